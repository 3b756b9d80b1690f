"""`g3chat models ...` and start-up resolution end to end, as subprocesses against a local Hub server.

The server publishes the offline test model's bytes under every catalog file name, so whichever variant
the pick chooses on this machine downloads, verifies and then really loads.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from g3chat.cli.models_json import estimate_record
from g3chat.core.gguf_file import inspect_gguf
from g3chat.core.models.arch import ArchFacts
from g3chat.core.models.catalog import load_catalog
from g3chat.core.models.fit import EngineShape, Weights, estimate, kv_bytes
from g3chat.core.models.hubcache import RepoCache, sha256_of
from g3chat.core.models.pick import with_margin
from g3chat.core.models.probe import gib, llama_capabilities
from tests.conftest import REPO, TEST_CTX, TEST_THREADS, run_cli
from tests.hubserver import HubFile, HubServer


@pytest.fixture(scope="module")
def hub(test_model_path: Path) -> Iterator[HubServer]:
    sha = sha256_of(test_model_path)
    files = [HubFile(v.repo, v.file, test_model_path, sha256=sha) for v in load_catalog().variants]
    with HubServer(files) as server:
        yield server


@pytest.fixture
def env(hub: HubServer) -> Iterator[dict[str, str]]:
    hub.state.drop_after.clear()
    hub.state.hold_at.clear()
    hub.state.release.clear()
    hub.state.throttle_s = 0.0
    yield {
        "HF_ENDPOINT": hub.endpoint,
        "G3CHAT_ENGINE__THREADS": str(TEST_THREADS),
        "G3CHAT_ENGINE__N_CTX": str(TEST_CTX),
    }
    hub.state.release.set()  # a body held back for a client that is gone


def config_text(home: Path) -> str:
    path = home / "config" / "config.toml"
    return path.read_text() if path.exists() else ""


def listed(env: dict[str, str]) -> dict[str, dict[str, object]]:
    proc = run_cli("models", "list", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    return {row["name"]: row for row in map(json.loads, proc.stdout.splitlines())}


def _fields(text: str) -> dict[str, str]:
    return dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in text.splitlines() if line)


def _parts_add_up(record: dict[str, Any]) -> None:
    parts = record["parts_bytes"]
    assert set(parts) == {"weights", "kv_cache", "compute", "runtime", "projector", "gpu_context"}
    assert all(isinstance(v, int) and v >= 0 for v in parts.values())
    assert sum(parts.values()) == record["estimate_bytes"] == record["host_bytes"] + record["gpu_bytes"]
    assert record["host_required_bytes"] == record["host_bytes"] - record["reclaimable_bytes"]


def test_fit_table_explains_the_choice(env: dict[str, str]) -> None:
    proc = run_cli("models", "fit", "--ctx", "4096", env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    header = next(line for line in lines if "VARIANT" in line)
    assert header.split() == ["VARIANT", "QUANT", "SIZE", "KV", "CACHE", "ESTIMATE", "VERDICT"]
    rows = lines[lines.index(header) + 1 : lines.index(header) + 1 + len(load_catalog().variants)]
    names = [row.replace("★", "").split()[0] for row in rows]
    assert sorted(names) == sorted(v.name for v in load_catalog().variants)
    starred = [row for row in rows if row.startswith("★")]
    assert len(starred) == 1 and starred[0].split()[1].startswith("e2b-")
    assert all("160 MiB" in row for row in rows)  # 20 KV layers x 4,096 tokens x 2 KiB, for every variant
    assert any(line.strip().startswith("RAM:") for line in lines)
    assert "context: 4,096 tokens" in proc.stdout and "★ recommended:" in proc.stdout
    assert "the best quality that fits" in proc.stdout


def test_info_reads_the_gguf_header(env: dict[str, str], test_model_path: Path) -> None:
    proc = run_cli("models", "info", str(test_model_path), env=env)
    assert proc.returncode == 0, proc.stderr
    fields = _fields(proc.stdout)
    assert fields["architecture"] == "gemma3" and fields["quantization"] == "Q4_K_M"
    assert fields["context length"] == "32,768" and fields["chat template"].startswith("no")
    assert fields["layers"] == "18 (18 own KV, 15 windowed)"
    assert f"{test_model_path.stat().st_size:,} bytes" in proc.stdout
    missing = run_cli("models", "info", "/nonexistent.gguf", env=env)
    assert (
        missing.returncode == 2 and "no such file" in missing.stderr and len(missing.stderr.splitlines()) == 1
    )


def test_fit_json_agrees_with_the_estimate_and_the_table(env: dict[str, str]) -> None:
    proc = run_cli("models", "fit", "--ctx", "4096", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    shape = EngineShape(**report["shape"])
    assert shape == EngineShape(4096) and report["requested_ctx"] == 4096  # the engine's defaults
    machine = report["machine"]
    assert machine["available_bytes"] <= machine["ram_available_bytes"] <= machine["ram_total_bytes"]
    features = frozenset(machine["cpu_features"])
    rows = {row["name"]: row for row in report["variants"]}
    assert sorted(rows) == sorted(v.name for v in load_catalog().variants)
    for variant in load_catalog().variants:
        row = rows[variant.name]
        _parts_add_up(row["estimate"])
        assert row["fits"] == (row["verdict"] != "won't fit")
        if row["installed"] or row["n_gpu_layers"]:
            continue  # estimated from its GGUF header, or with a GPU: covered by test_models_fit
        weights = Weights.from_catalog(variant, variant.facts, features)
        expected = estimate(variant.facts, weights, shape)
        assert row["estimate"] == estimate_record(expected)
        assert row["estimate"]["parts_bytes"]["kv_cache"] == 20 * 4096 * 2048  # 20 KV layers x 2 KiB
        assert row["required_bytes"] == with_margin(expected.host_required)
        if row["verdict"] == "CPU":
            assert row["required_bytes"] <= machine["available_bytes"]
    starred = [name for name, row in rows.items() if row["recommended"]]
    best = report["recommended"]
    assert best is not None and starred == [best["name"]] and best["n_ctx"] == 4096
    # The table shows the same numbers, rounded for people.
    table = run_cli("models", "fit", "--ctx", "4096", env=env).stdout.splitlines()
    header = next(line for line in table if "VARIANT" in line)
    for line in table[table.index(header) + 1 : table.index(header) + 1 + len(rows)]:
        cells = re.split(r"\s{2,}", line.replace("★", "").strip())
        row = rows[cells[0]]
        assert cells[3] == gib(row["estimate"]["parts_bytes"]["kv_cache"])
        if row["n_gpu_layers"] == 0:
            assert cells[4] == gib(row["estimate"]["host_bytes"]) and cells[5] == row["verdict"]
        assert line.startswith("★") == row["recommended"]
    assert f"RAM: {gib(machine['ram_total_bytes'])} total" in "\n".join(table)


def test_info_json_agrees_with_the_estimate_and_the_table(env: dict[str, str], test_model_path: Path) -> None:
    proc = run_cli("models", "info", str(test_model_path), "--ctx", "4096", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    summary = inspect_gguf(test_model_path)
    facts = ArchFacts.from_gguf(summary)
    assert facts is not None
    assert info["size"] == test_model_path.stat().st_size and info["architecture"] == "gemma3"
    assert (info["quantization"], info["context_length"], info["chat_template"]) == ("Q4_K_M", 32768, False)
    assert info["facts"]["n_layer"] == 18 and info["facts"]["swa_layers_kv"] == 15
    assert info["facts"]["n_embd_per_layer"] == 0
    shape = EngineShape(**info["shape"])
    assert shape == EngineShape(4096)
    weights = Weights.from_gguf(summary, llama_capabilities()[1])
    expected = estimate(facts, weights, shape)
    assert info["estimate"] == estimate_record(expected)
    _parts_add_up(info["estimate"])
    assert info["estimate"]["n_ctx"] == 4096 and info["estimate"]["gpu_bytes"] == 0
    assert info["kv_bytes_per_1024"] == kv_bytes(facts, EngineShape(1024))
    memory = info["memory"]
    assert memory["required_bytes"] == with_margin(expected.host_required)
    assert memory["fits"] == (memory["required_bytes"] <= memory["available_bytes"])
    human = _fields(run_cli("models", "info", str(test_model_path), "--ctx", "4096", env=env).stdout)
    parts = info["estimate"]["parts_bytes"]
    assert human["memory (CPU)"] == (
        f"{gib(info['estimate']['host_bytes'])} at 4,096 tokens (weights {gib(parts['weights'])}, "
        f"KV {gib(parts['kv_cache'])}, compute {gib(parts['compute'])}, runtime {gib(parts['runtime'])})"
    )
    assert human["KV cache"] == f"{gib(info['kv_bytes_per_1024'])} per 1,024 tokens (f16)"
    missing = run_cli("models", "info", "/nonexistent.gguf", "--json", env=env)
    assert missing.returncode == 2 and missing.stdout == "" and len(missing.stderr.splitlines()) == 1


def test_use_writes_the_config_keeping_comments(
    env: dict[str, str], g3chat_home: Path, test_model_path: Path
) -> None:
    config = g3chat_home / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("# my settings\n[generation]\ntemperature = 0.5  # calmer\n")
    proc = run_cli("models", "use", str(test_model_path), env=env)
    assert proc.returncode == 0, proc.stderr
    text = config.read_text()
    assert text.startswith("# my settings\n") and "temperature = 0.5  # calmer" in text
    assert f'model = "{test_model_path.resolve()}"' in text
    assert text.index("model =") < text.index("[generation]")  # top-level, not inside the table
    not_there = run_cli("models", "use", "e2b-q4_k_m", env=env)
    assert not_there.returncode == 2 and "not downloaded" in not_there.stderr
    assert "g3chat models pull e2b-q4_k_m" in not_there.stderr
    unknown = run_cli("models", "use", "llama-7b", env=env)
    assert unknown.returncode == 2 and "no such file or model variant" in unknown.stderr


def test_pull_auto_downloads_verifies_activates_and_survives_a_dropped_connection(
    env: dict[str, str], hub: HubServer, g3chat_home: Path
) -> None:
    sha = hub.state.files[0].sha256
    size = hub.state.files[0].size
    hub.state.drop_after[sha] = 40_000_000
    before = hub.sent(sha)
    proc = run_cli("models", "pull", "auto", "--yes", env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "connection lost" in proc.stderr and "sha256 verified" in proc.stderr
    fetched = hub.sent(sha) - before
    assert size <= fetched <= size + 40_000_000  # at most what was in flight when it dropped
    chosen = (
        next(line for line in proc.stderr.splitlines() if "auto:" in line).split("auto: ")[1].split(":")[0]
    )
    assert f'model = "{chosen}"' in config_text(g3chat_home)
    rows = listed(env)
    assert rows[chosen]["installed"] and rows[chosen]["active"]
    assert sum(bool(r["installed"]) for r in rows.values()) == 1
    answer = run_cli("ask", "--json", "-n", "3", "hello", env=env)
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout)["model"] == chosen
    removed = run_cli("models", "rm", chosen, "--yes", env=env)
    assert removed.returncode == 0 and "freed" in removed.stdout
    assert "model =" not in config_text(g3chat_home) and not listed(env)[chosen]["installed"]


# ``python -c _LAUNCH SIG_DFL|SIG_IGN ARGS...`` runs ``g3chat ARGS`` with SIGINT at its default, as from a
# terminal, or ignored, as a script's or CI runner's background job (``cmd &``) starts it.
_LAUNCH = (
    "import os, signal, sys; signal.signal(signal.SIGINT, getattr(signal, sys.argv[1])); "
    "os.execv(sys.executable, [sys.executable, '-m', 'g3chat', *sys.argv[2:]])"
)
HOLD_AT = 64 << 20  # the server holds the body back here: a late Ctrl+C cannot lose the race to the end


def ctrl_c_during_pull(env: dict[str, str], hub: HubServer, partial: Path, name: str, sigint: str) -> str:
    """Start ``models pull NAME``, send SIGINT once 3 MB are on disk; the pull must exit 130: its stderr."""
    hub.state.throttle_s = 0.02  # about 12 MiB/s: the Ctrl+C lands while bytes are arriving
    hub.state.hold_at[hub.state.files[0].sha256] = HOLD_AT
    proc = subprocess.Popen(
        [sys.executable, "-c", _LAUNCH, sigint, "models", "pull", name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **env},
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 60
        while (not partial.exists() or partial.stat().st_size < 3_000_000) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1].decode()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        try:
            _out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"Ctrl+C was lost: still pulling 60 s later\n{proc.communicate()[1].decode()}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        hub.state.hold_at.clear()
        hub.state.release.set()
    text = err.decode()
    assert proc.returncode == 130, text
    last = text.strip().splitlines()[-1]
    assert last.startswith("g3chat: interrupted:") and last.endswith("kept; run the same command to resume")
    assert "Traceback" not in text
    return text


def test_ctrl_c_during_pull_leaves_a_resumable_partial(
    env: dict[str, str], hub: HubServer, tmp_path: Path
) -> None:
    variant = load_catalog().get("e2b-q4_k_m")
    sha, size = hub.state.files[0].sha256, hub.state.files[0].size
    cache = RepoCache.of(tmp_path / "hf" / "hub", variant.repo)
    partial = cache.partial(sha)
    ctrl_c_during_pull(env, hub, partial, variant.name, "SIG_DFL")
    kept = partial.stat().st_size
    assert 3_000_000 <= kept <= HOLD_AT < size
    assert cache.find(variant.file) is None and not cache.blob(sha).exists()
    hub.state.throttle_s = 0.0
    before = hub.sent(sha)
    again = run_cli("models", "pull", variant.name, env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "resuming at" in again.stderr
    assert hub.sent(sha) - before == size - kept  # nothing fetched twice
    assert not partial.exists()


def test_ctrl_c_stops_a_pull_started_with_sigint_ignored(
    env: dict[str, str], hub: HubServer, tmp_path: Path
) -> None:
    """A background job of a script inherits SIGINT ignored; a Ctrl+C (``kill -INT``) must still stop it."""
    variant = load_catalog().get("e2b-q4_k_m")
    cache = RepoCache.of(tmp_path / "hf" / "hub", variant.repo)
    partial = cache.partial(hub.state.files[0].sha256)
    ctrl_c_during_pull(env, hub, partial, variant.name, "SIG_IGN")
    assert 3_000_000 <= partial.stat().st_size <= HOLD_AT
    assert cache.find(variant.file) is None


def test_no_model_installed_offers_to_pull(env: dict[str, str], g3chat_home: Path) -> None:
    refused = run_cli("ask", "-n", "2", "hi", env=env)
    assert refused.returncode == 2
    assert "g3chat models pull auto" in refused.stderr and "--yes" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    accepted = run_cli("ask", "--yes", "--json", "-n", "2", "hi", env=env, timeout=300)
    assert accepted.returncode == 0, accepted.stderr
    model = json.loads(accepted.stdout)["model"]
    assert model.startswith("e2b-") and f'model = "{model}"' in config_text(g3chat_home)


def test_unreachable_hub_falls_back_to_the_test_model(env: dict[str, str]) -> None:
    proc = run_cli("ask", "-n", "2", "hi", env={**env, "HF_ENDPOINT": "http://127.0.0.1:9"})
    assert proc.returncode == 0, proc.stderr
    assert "cannot be reached" in proc.stderr and "tiny offline test model" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    offline = run_cli("ask", "-n", "2", "hi", env={**env, "HF_HUB_OFFLINE": "1"})
    assert offline.returncode == 0 and "offline mode is on" in offline.stderr
