"""`g3chat ask` end to end, as a subprocess with the real test model."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli
from tests.fixtures.gguf_edit import truncated

pytestmark = pytest.mark.model


def rows(home: Path, sql: str) -> list[tuple]:
    db = sqlite3.connect(home / "data" / "history.db")
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_ask_json_fields_and_history(cli_env: dict[str, str], g3chat_home: Path) -> None:
    proc = run_cli("ask", "--json", "--temperature", "0", "-n", "8", "What is a river?", env=cli_env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) >= {"text", "model", "conversation_id", "finish_reason", "usage", "timings"}
    assert data["finish_reason"] == "length" and data["text"]
    assert data["usage"]["completion_tokens"] == 8 and data["usage"]["prompt_tokens"] > 5
    assert set(data["timings"]) == {"load_s", "ttft_s", "decode_tokens_per_s"}
    assert data["timings"]["load_s"] > 0 and data["timings"]["decode_tokens_per_s"] > 0
    saved = rows(g3chat_home, "SELECT role, status, content, completion_tokens FROM messages ORDER BY id")
    assert [(r[0], r[1]) for r in saved] == [("user", "complete"), ("assistant", "complete")]
    assert json.loads(saved[0][2]) == [{"type": "text", "text": "What is a river?"}]
    assert json.loads(saved[1][2])[0]["text"] == data["text"] and saved[1][3] == 8
    assert rows(g3chat_home, "SELECT id, title FROM conversations") == [
        (data["conversation_id"], "What is a river?")
    ]


def test_plain_output_streams_to_a_pipe(cli_env: dict[str, str]) -> None:
    proc = run_cli("ask", "--temperature", "0", "-n", "6", "hello", env=cli_env)
    assert proc.returncode == 0
    assert proc.stdout.strip() and proc.stdout.endswith("\n")
    assert "\x1b[" not in proc.stdout  # no terminal escapes when stdout is not a terminal
    # stderr holds only the one-line notice about the test model: no llama.cpp chatter.
    assert proc.stderr.splitlines() == [
        line for line in proc.stderr.splitlines() if line.startswith("g3chat: note:")
    ]


def test_test_model_notice_when_nothing_configured(
    cli_env: dict[str, str], test_model_path: Path, g3chat_home: Path
) -> None:
    env = {k: v for k, v in cli_env.items() if k != "G3CHAT_MODEL"}
    models = g3chat_home / "data" / "models"
    models.mkdir(parents=True)
    os.link(test_model_path, models / test_model_path.name)  # saves assembling it again; it is re-verified
    proc = run_cli("ask", "-n", "2", "hi", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "tiny offline test model" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_stdin_is_the_prompt_or_appended_context(cli_env: dict[str, str], g3chat_home: Path) -> None:
    proc = run_cli("ask", "--json", "-n", "2", env=cli_env, input="notes from stdin\n")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("ask", "--json", "-n", "2", "summarise this", env=cli_env, input="line one\nline two\n")
    assert proc.returncode == 0, proc.stderr
    users = [
        json.loads(r[0])[0]["text"]
        for r in rows(g3chat_home, "SELECT content FROM messages WHERE role='user'")
    ]
    assert users == ["notes from stdin\n", "summarise this\n\nline one\nline two"]


def test_continue_and_chat_id_extend_a_conversation(cli_env: dict[str, str], g3chat_home: Path) -> None:
    first = json.loads(run_cli("ask", "--json", "-n", "3", "first question", env=cli_env).stdout)
    run_cli("ask", "--json", "-n", "3", "another chat", env=cli_env)
    second = json.loads(
        run_cli(
            "ask", "--json", "-n", "3", "--chat", str(first["conversation_id"]), "second", env=cli_env
        ).stdout
    )
    assert second["conversation_id"] == first["conversation_id"]
    # The whole history went to the model: the prompt is longer than the new message alone.
    assert second["usage"]["prompt_tokens"] > first["usage"]["prompt_tokens"] + 5
    third = json.loads(run_cli("ask", "--json", "-n", "3", "-c", "third", env=cli_env).stdout)
    assert third["conversation_id"] == first["conversation_id"]  # -c continues the most recent one
    counts = rows(g3chat_home, "SELECT conversation_id, COUNT(*) FROM messages GROUP BY conversation_id")
    assert sorted(n for _, n in counts) == [2, 6]


def test_no_save_leaves_history_alone(cli_env: dict[str, str], g3chat_home: Path) -> None:
    proc = run_cli("ask", "--json", "--no-save", "-n", "2", "secret", env=cli_env)
    assert proc.returncode == 0 and json.loads(proc.stdout)["conversation_id"] is None
    assert not (g3chat_home / "data" / "history.db").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--temperature", "hot"], "Invalid value for '--temperature'"),
        (["--top-p", "2"], "Invalid value for '--top-p'"),
        (["--max-tokens", "0"], "Invalid value for '--max-tokens'"),
        (["--frobnicate"], "No such option: --frobnicate"),
        (["--chat", "999"], "no conversation with id 999"),
        (["--chat", "1", "-c"], "--chat and --continue cannot be used together"),
    ],
)
def test_bad_flags_are_one_line_errors(cli_env: dict[str, str], args: list[str], expected: str) -> None:
    proc = run_cli("ask", *args, "hello", env=cli_env)
    assert proc.returncode == 2
    assert expected in proc.stderr and proc.stderr.startswith("g3chat:")
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_empty_prompt_is_an_input_error(cli_env: dict[str, str]) -> None:
    proc = run_cli("ask", env=cli_env, input="   \n")
    assert proc.returncode == 2 and "no prompt" in proc.stderr


def _bad_model(kind: str, tmp_path: Path, model: Path) -> Path:
    if kind == "missing":
        return tmp_path / "nope.gguf"
    if kind == "directory":
        return tmp_path
    if kind == "text":
        (tmp_path / "notes.gguf").write_text("these are my notes, not a model\n")
        return tmp_path / "notes.gguf"
    return truncated(model, tmp_path / "cut.gguf", 50_000_000)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("missing", "no such file"),
        ("directory", "is a directory"),
        ("text", "not a GGUF model file"),
        ("truncated", "truncated GGUF file"),
    ],
)
def test_bad_model_files(
    cli_env: dict[str, str],
    tmp_path: Path,
    test_model_path: Path,
    kind: str,
    expected: str,
    g3chat_home: Path,
) -> None:
    path = _bad_model(kind, tmp_path, test_model_path)
    proc = run_cli("ask", "--model", str(path), "hello", env=cli_env)
    assert proc.returncode == 2, proc.stderr
    assert expected in proc.stderr and str(path) in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    verbose = run_cli("ask", "--model", str(path), "--verbose", "hello", env=cli_env)
    assert verbose.returncode == 2 and "Traceback" in verbose.stderr


def test_malformed_config_is_exit_2_with_file_and_line(cli_env: dict[str, str], g3chat_home: Path) -> None:
    config = g3chat_home / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[generation]\ntemperature = "warm"\n')
    proc = run_cli("ask", "hello", env=cli_env)
    assert proc.returncode == 2
    assert f"{config}:2: generation.temperature must be a number" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_sigint_keeps_the_partial_answer(cli_env: dict[str, str], g3chat_home: Path) -> None:
    env = {**os.environ, **cli_env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "g3chat", "ask", "--plain", "-n", "2000", "Count slowly to one thousand."],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=REPO,
    )
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    received = b""
    deadline = time.monotonic() + 60
    while len(received) < 40 and time.monotonic() < deadline:  # wait until the answer is streaming
        chunk = proc.stdout.read()
        received += chunk or b""
        time.sleep(0.05)
    assert len(received) >= 40, "no streamed output arrived"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    received += out or b""
    assert proc.returncode == 130, err.decode()
    assert b"partial answer was saved" in err and b"Traceback" not in err
    saved = rows(g3chat_home, "SELECT role, status, content FROM messages ORDER BY id")
    assert [(r[0], r[1]) for r in saved] == [("user", "complete"), ("assistant", "partial")]
    text = json.loads(saved[1][2])[0]["text"]
    assert text and received.decode("utf-8", errors="replace").startswith(text[:20])
    assert len(text) >= len(received.decode("utf-8", errors="replace").strip()) - 1
