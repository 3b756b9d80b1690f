"""A context is checked before llama.cpp allocates it: clamped to the trained one, refused (``--ctx``) or
lowered (``engine.n_ctx``) when its KV cache would not fit memory (the estimate of ``models fit``)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from g3chat.core.errors import InputError
from g3chat.core.gguf_file import inspect_gguf
from g3chat.core.models.arch import ArchFacts
from g3chat.core.models.ctxfit import STEP, fit_context
from g3chat.core.models.fit import EngineShape, Weights
from g3chat.core.models.pick import Verdict, place
from g3chat.core.models.probe import GiB, Hardware
from tests.conftest import run_cli

HUGE = 99_999_999


@pytest.fixture(scope="module")
def long_model(test_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test model claiming a 99,999,999-token trained context (a header edit; the weights are the same),
    so that only memory can stop an absurd context."""
    from tests.fixtures.gguf_edit import with_metadata

    out = tmp_path_factory.mktemp("longctx") / "long-context.gguf"
    return with_metadata(test_model_path, out, {"gemma3.context_length": HUGE})


def machine(ram_gib: float) -> Hardware:
    return Hardware(ram_total=int(ram_gib * GiB), ram_available=int(ram_gib * GiB))


def fits(path: Path, hw: Hardware, n_ctx: int) -> bool:
    summary = inspect_gguf(path)
    facts = ArchFacts.from_gguf(summary)
    assert facts is not None
    weights = Weights.from_gguf(summary, hw.cpu_features)
    verdict, _, _ = place(facts, weights, hw, EngineShape(n_ctx))
    return verdict is not Verdict.WONT_FIT


def test_above_the_trained_context_is_clamped_with_a_notice(test_model_path: Path) -> None:
    trained = inspect_gguf(test_model_path).context_length
    fitted = fit_context(test_model_path, EngineShape(HUGE), machine(64), explicit=True, name="m")
    assert fitted.n_ctx == trained
    assert fitted.notice == (
        f"note: --ctx {HUGE:,} is above m's trained context of {trained:,} tokens; using {trained:,}"
    )
    within = fit_context(test_model_path, EngineShape(4096), machine(64), explicit=True)
    assert within.n_ctx == 4096 and within.notice is None
    assert fit_context(test_model_path, EngineShape(0), machine(64), explicit=False).n_ctx == trained


def test_an_explicit_context_that_does_not_fit_is_refused_naming_the_largest(long_model: Path) -> None:
    hw = machine(8)
    with pytest.raises(InputError) as err:
        fit_context(long_model, EngineShape(HUGE), hw, explicit=True, name="m")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"--ctx {HUGE:,}: m with a {HUGE:,}-token context needs")
    largest = int(message.rsplit("--ctx ", 1)[1].rstrip(")"))
    assert largest % STEP == 0 and f"the largest context that fits is {largest:,}" in message
    # The largest is exact for the estimate: it fits, one more step does not.
    assert fits(long_model, hw, largest) and not fits(long_model, hw, largest + STEP)
    assert 100_000 < largest < HUGE
    # More memory, a larger context.
    with pytest.raises(InputError, match="largest context that fits") as bigger:
        fit_context(long_model, EngineShape(HUGE), machine(16), explicit=True)
    assert int(str(bigger.value).rsplit("--ctx ", 1)[1].rstrip(")")) > largest


def test_a_configured_context_that_does_not_fit_is_lowered_with_a_notice(long_model: Path) -> None:
    hw = machine(8)
    fitted = fit_context(long_model, EngineShape(HUGE), hw, explicit=False, name="m")
    assert fits(long_model, hw, fitted.n_ctx) and not fits(long_model, hw, fitted.n_ctx + STEP)
    assert fitted.notice == (
        f"note: m fits this machine only with a {fitted.n_ctx:,}-token context (engine.n_ctx is {HUGE:,}); "
        "using that"
    )


def test_when_even_the_weights_do_not_fit_the_context_is_not_blamed(test_model_path: Path) -> None:
    tiny = machine(0.05)
    fitted = fit_context(test_model_path, EngineShape(4096), tiny, explicit=True)
    assert fitted.n_ctx == 4096 and fitted.notice is None


def test_gpu_placement_counts(long_model: Path) -> None:
    """With a GPU the same check runs over the placements the pick considers (GPU memory holds KV too)."""
    from g3chat.core.models.probe import GPU

    small = machine(8)
    with_gpu = small.with_gpus(GPU("card", 80 * GiB, 80 * GiB, "cuda"))
    cpu_only = fit_context(long_model, EngineShape(HUGE), small, explicit=False)
    gpu = fit_context(long_model, EngineShape(HUGE), with_gpu, explicit=False)
    assert gpu.n_ctx > cpu_only.n_ctx


def test_ask_with_an_absurd_context_fails_fast_in_one_line(long_model: Path, cli_env: dict[str, str]) -> None:
    """The reported hang: now one line, exit 2, before any allocation (the real CLI on this machine)."""
    env = {**cli_env, "G3CHAT_MODEL": str(long_model)}
    started = time.monotonic()
    proc = run_cli("ask", "--ctx", str(HUGE), "-n", "1", "hi", env=env, timeout=60)
    elapsed = time.monotonic() - started
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr and proc.stdout == ""
    assert lines[0].startswith(f"g3chat: --ctx {HUGE:,}: ") and "the largest context that fits is" in lines[0]
    assert elapsed < 30  # no KV cache of hundreds of GiB was allocated first
    # The context it names really loads and answers.
    largest = lines[0].rsplit("--ctx ", 1)[1].rstrip(")")
    small_enough = min(int(largest), 4096)
    ok = run_cli("ask", "--ctx", str(small_enough), "-n", "1", "hi", env=env, timeout=120)
    assert ok.returncode == 0, ok.stderr


def test_ask_clamps_above_the_trained_context(cli_env: dict[str, str], test_model_path: Path) -> None:
    trained = inspect_gguf(test_model_path).context_length
    proc = run_cli("ask", "--ctx", str(HUGE), "-n", "1", "hi", env=cli_env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    name = test_model_path.name
    assert f"is above {name}'s trained context of {trained:,} tokens; using {trained:,}" in proc.stderr


def test_serve_checks_the_context_too(long_model: Path, cli_env: dict[str, str]) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**cli_env, "G3CHAT_MODEL": str(long_model)}
    proc = run_cli("serve", "--ctx", str(HUGE), "--port", str(port), env=env, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "the largest context that fits is" in proc.stderr.strip().splitlines()[-1]


def test_engine_shape_fields_reach_the_estimate(long_model: Path) -> None:
    """flash attention off needs a larger compute buffer, so the largest fitting context is smaller."""
    hw = machine(8)
    on = fit_context(long_model, EngineShape(HUGE, flash_attn=True), hw, explicit=False).n_ctx
    off = fit_context(long_model, replace(EngineShape(HUGE), flash_attn=False), hw, explicit=False).n_ctx
    assert off < on


def test_the_chat_ui_factory_checks_flag_and_config(
    long_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chat UI builds its engine with Runtime.engine_factory: `g3chat --ctx` is refused there before
    loading, and a configured engine.n_ctx is lowered with the notice the UI shows."""
    from g3chat.core.engine.llama import LlamaCppEngine
    from g3chat.runtime import Runtime

    with pytest.raises(InputError, match="the largest context that fits is"):
        Runtime.from_env().engine_factory(model=str(long_model), n_ctx=HUGE)()
    monkeypatch.setenv("G3CHAT_ENGINE__N_CTX", str(HUGE))
    engine, notice = Runtime.from_env().engine_factory(model=str(long_model))()
    assert notice is not None and "fits this machine only with a" in notice
    assert isinstance(engine, LlamaCppEngine) and 100_000 < engine.n_ctx_requested < HUGE
