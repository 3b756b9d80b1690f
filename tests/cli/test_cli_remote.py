"""`g3chat ask --server` and `g3chat models list --server` end to end, as subprocesses, against a real
llama_cpp.server; each fault gives one line on stderr, the documented exit code, and loses nothing."""

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
from tests.fixtures.fault_proxy import Fault, FaultProxy
from tests.fixtures.llama_server import free_port

pytestmark = pytest.mark.model

KEY_VARIABLE = "G3TEST_SERVER_KEY"


@pytest.fixture
def env(llama_server) -> dict[str, str]:
    return {"G3CHAT_ENGINE__API_KEY_ENV": KEY_VARIABLE, KEY_VARIABLE: llama_server.api_key}


def rows(home: Path, sql: str) -> list[tuple]:
    db = sqlite3.connect(home / "data" / "history.db")
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def saved_answer(home: Path) -> tuple[str, str, str | None]:
    status, content, error = rows(
        home, "SELECT status, content, error FROM messages WHERE role='assistant' ORDER BY id DESC LIMIT 1"
    )[0]
    return status, json.loads(content)[0]["text"] if json.loads(content) else "", error


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.stderr.startswith("g3chat: ") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return proc.stderr.strip()


def test_ask_streams_from_a_real_server(llama_server, env: dict[str, str], g3chat_home: Path) -> None:
    proc = run_cli("ask", "--server", llama_server.url, "-n", "6", "--temperature", "0", "hi", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() and proc.stderr == ""  # no test-model notice: nothing local was loaded
    assert rows(g3chat_home, "SELECT model FROM conversations") == [("gemma-test",)]
    status, text, error = saved_answer(g3chat_home)
    assert status == "complete" and error is None and proc.stdout.rstrip("\n").startswith(text.rstrip("\n"))


def test_ask_json_names_the_engine_and_server(llama_server, env: dict[str, str]) -> None:
    env = {**env, "G3CHAT_ENGINE__BASE_URL": llama_server.url}  # the config instead of --server
    proc = run_cli("ask", "--json", "-n", "5", "--temperature", "0", "--no-save", "Name a colour.", env=env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["engine"] == "remote" and data["server"] == llama_server.url and data["model"] == "gemma-test"
    assert data["finish_reason"] == "length" and data["usage"]["completion_tokens"] == 5
    assert data["usage"]["estimated"] is True and data["usage"]["prompt_tokens"] > 5


def test_models_list_shows_the_servers_models(llama_server, env: dict[str, str]) -> None:
    proc = run_cli("models", "list", "--server", llama_server.url, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0] == "gemma-test"
    listed = run_cli("models", "list", "--json", "--server", llama_server.url, env=env)
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == ["gemma-test"]


def test_dropped_stream_prints_and_saves_the_partial_answer(
    fault_proxy: FaultProxy, env: dict[str, str], g3chat_home: Path
) -> None:
    fault_proxy.add(Fault("drop", after_events=6))
    proc = run_cli(
        "ask", "--server", fault_proxy.url, "-n", "100", "--temperature", "0", "Tell a story.", env=env
    )
    assert proc.returncode == 1
    assert "dropped mid-answer; the partial answer was saved" in one_line(proc)
    status, text, error = saved_answer(g3chat_home)
    assert status == "error" and text and error is not None and "dropped mid-answer" in error
    assert proc.stdout.rstrip("\n") == text.rstrip("\n")  # what was shown is what was kept
    assert fault_proxy.calls() == 1


def test_stalled_stream_times_out_and_keeps_the_partial_answer(
    fault_proxy: FaultProxy, env: dict[str, str], g3chat_home: Path
) -> None:
    fault_proxy.add(Fault("stall", after_events=4))
    env = {**env, "G3CHAT_ENGINE__READ_TIMEOUT": "4"}
    proc = run_cli("ask", "--server", fault_proxy.url, "-n", "100", "Tell a story.", env=env)
    assert proc.returncode == 1 and "sent nothing for 4 s (read timeout)" in one_line(proc)
    status, text, _ = saved_answer(g3chat_home)
    assert status == "error" and text


def test_persistent_5xx_is_retried_then_one_line(
    fault_proxy: FaultProxy, env: dict[str, str], g3chat_home: Path
) -> None:
    fault_proxy.add(Fault("status", status=502, times=None, body={"error": {"message": "upstream down"}}))
    env = {**env, "G3CHAT_ENGINE__RETRIES": "1"}
    proc = run_cli("ask", "--server", fault_proxy.url, "hi", env=env)
    assert proc.returncode == 1
    assert "answered 502 Injected: upstream down (after 2 attempts)" in one_line(proc)
    assert fault_proxy.calls() == 2
    users = rows(g3chat_home, "SELECT content FROM messages WHERE role='user'")
    assert [json.loads(u[0])[0]["text"] for u in users] == ["hi"]  # the question is never lost


@pytest.mark.parametrize(
    ("case", "code", "expected"),
    [
        ("no key", 2, "answered 401 Unauthorized: Invalid API key; it needs an API key"),
        ("unknown model", 2, "has no model 'gemma-3n-E4B' (it has: gemma-test)"),
        ("refused", 1, "connection refused (is the server running?)"),
        ("unknown host", 1, "host name 'g3chat-test.invalid' not found"),
        ("tls", 1, "TLS handshake failed"),
        ("bad url", 2, "'localhost:8080' is not an http(s) URL"),
        ("key variable unset", 2, "engine.api_key_env names G3TEST_UNSET, but G3TEST_UNSET is not set"),
        ("local flags", 2, "--ctx and --threads set up the local engine; a server decides its own"),
    ],
)
def test_server_faults_are_one_line_errors(
    llama_server,
    env: dict[str, str],
    case: str,
    code: int,
    expected: str,
) -> None:
    url, args = llama_server.url, []
    if case == "no key":
        env = {}
    elif case == "unknown model":
        args = ["-m", "gemma-3n-E4B"]
    elif case == "refused":
        url = f"http://127.0.0.1:{free_port()}/v1"
    elif case == "unknown host":
        url = "http://g3chat-test.invalid:8080/v1"
    elif case == "tls":
        url = url.replace("http://", "https://")
    elif case == "bad url":
        url = "localhost:8080"
    elif case == "key variable unset":
        env = {"G3CHAT_ENGINE__API_KEY_ENV": "G3TEST_UNSET"}
    elif case == "local flags":
        args = ["--ctx", "4096"]
    proc = run_cli("ask", "--server", url, *args, "hi", env=env)
    assert proc.returncode == code, proc.stderr
    assert expected in one_line(proc)


def test_sigint_cancels_a_remote_answer_and_saves_it(
    llama_server,
    env: dict[str, str],
    g3chat_home: Path,
) -> None:
    command = [sys.executable, "-m", "g3chat", "ask", "--plain", "--server", llama_server.url, "-n", "300"]
    proc = subprocess.Popen(
        [*command, "Write a long story about a river."],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **env},
        cwd=REPO,
    )
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    received = b""
    deadline = time.monotonic() + 90
    while len(received) < 20 and time.monotonic() < deadline:
        received += proc.stdout.read() or b""
        time.sleep(0.05)
    assert len(received) >= 20, "no streamed output arrived"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert b"partial answer was saved" in err
    status, text, _ = saved_answer(g3chat_home)
    assert status == "partial" and text
    assert (received + (out or b"")).decode().rstrip("\n") == text.rstrip("\n")
