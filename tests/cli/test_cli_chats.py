"""`g3chat chats` and `g3chat config` (no model needed: history is written through the store)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from g3chat.core.store import Store
from tests.conftest import run_cli


@pytest.fixture
def history(g3chat_home: Path) -> Store:
    store = Store(g3chat_home / "data" / "history.db")
    c = store.create_conversation("Rivers", model="m.gguf", system_prompt="Be brief.")
    store.add_message(c.id, "user", "What is a river?")
    store.add_message(c.id, "assistant", "Flowing **water**.\n\n```py\nprint(1)\n```")
    d = store.create_conversation("Mountains")
    store.add_message(d.id, "user", "Tallest?")
    store.add_message(d.id, "assistant", "Everest", status="partial")
    return store


def test_list(history: Store) -> None:
    proc = run_cli("chats", "list")
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert lines[0].split("\t")[3] == "Mountains" and lines[1].split("\t")[3] == "Rivers"
    as_json = [json.loads(line) for line in run_cli("chats", "list", "--json").stdout.splitlines()]
    assert [c["title"] for c in as_json] == ["Mountains", "Rivers"] and as_json[1]["messages"] == 2


def test_list_empty() -> None:
    proc = run_cli("chats", "list")
    assert proc.returncode == 0 and "no conversations yet" in proc.stdout


def test_show_and_export_markdown(history: Store, tmp_path: Path) -> None:
    shown = run_cli("chats", "show", "1")
    assert shown.returncode == 0
    assert "# Rivers" in shown.stdout and "## You" in shown.stdout and "Flowing **water**." in shown.stdout
    assert "Be brief." in shown.stdout
    partial = run_cli("chats", "show", "2").stdout
    assert "## Assistant (partial)" in partial
    out = tmp_path / "rivers.md"
    proc = run_cli("chats", "export", "1", "--format", "md", "-o", str(out))
    assert proc.returncode == 0 and out.read_text() == shown.stdout


def test_export_json(history: Store) -> None:
    proc = run_cli("chats", "export", "1", "--format", "json")
    data = json.loads(proc.stdout)
    assert data["title"] == "Rivers" and data["system_prompt"] == "Be brief."
    assert [m["role"] for m in data["messages"]] == ["user", "assistant"]
    assert data["messages"][1]["content"][0]["text"].startswith("Flowing")


def test_rm(history: Store) -> None:
    proc = run_cli("chats", "rm", "1")
    assert proc.returncode == 0 and "deleted conversation 1 (Rivers)" in proc.stderr
    assert [c.title for c in history.list_conversations()] == ["Mountains"]
    missing = run_cli("chats", "rm", "2", "77")
    assert missing.returncode == 2 and "no conversation with id 77" in missing.stderr
    assert [c.title for c in history.list_conversations()] == ["Mountains"]  # all or nothing


@pytest.mark.parametrize("args", [["show", "9"], ["export", "9"], ["export", "1", "--format", "xml"]])
def test_errors_are_exit_2(history: Store, args: list[str]) -> None:
    proc = run_cli("chats", *args)
    assert proc.returncode == 2 and proc.stderr.startswith("g3chat:") and len(proc.stderr.splitlines()) == 1


def test_config_path_and_show(g3chat_home: Path) -> None:
    assert run_cli("config", "path").stdout.strip() == str(g3chat_home / "config" / "config.toml")
    every = run_cli("config", "path", "--all").stdout
    assert str(g3chat_home / "data" / "history.db") in every
    (g3chat_home / "config").mkdir(parents=True)
    (g3chat_home / "config" / "config.toml").write_text("[generation]\ntemperature = 0.25\n")
    shown = run_cli("config", "show", env={"G3CHAT_ENGINE__N_CTX": "4096"}).stdout
    import tomllib

    data = tomllib.loads(shown)
    assert data["generation"]["temperature"] == 0.25 and data["engine"]["n_ctx"] == 4096
    assert "# Sampling temperature" in shown


def test_config_path_json(g3chat_home: Path) -> None:
    proc = run_cli("config", "path", "--json")
    assert proc.returncode == 0
    where = json.loads(proc.stdout)
    assert where["config_file"] == str(g3chat_home / "config" / "config.toml")
    assert where["history_database"] == str(g3chat_home / "data" / "history.db")
    assert where["mcp_servers"] == str(g3chat_home / "config" / "mcp.json")


def test_version_and_help() -> None:
    from g3chat import __version__

    assert run_cli("--version").stdout.strip() == f"g3chat {__version__}"
    help_text = run_cli("--help").stdout
    for command in ("ask", "chats", "config"):
        assert command in help_text


def _on_a_terminal(*args: str) -> bytes:
    """What `python -m g3chat ARGS` writes when its stdout is a real pseudo-terminal (rich's rendering)."""
    import os
    import pty
    import subprocess
    import sys

    from tests.conftest import REPO

    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "80"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "g3chat", *args], stdout=follower, stderr=follower, cwd=REPO, env=env
    )
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    assert proc.wait(timeout=60) == 0, out
    return out


def test_show_ends_with_a_newline_piped_and_on_a_terminal(history: Store) -> None:
    for body in ["```\nunclosed fence", "| a | b |\n|---|---|\n| 1 | 2 |"]:
        c = history.create_conversation("Ends")
        history.add_message(c.id, "user", "x")
        history.add_message(c.id, "assistant", body)
        for plain in ([], ["--plain"]):
            piped = run_cli("chats", "show", str(c.id), *plain)
            assert piped.returncode == 0 and piped.stdout.endswith("\n") and not piped.stdout.endswith("\n\n")
            shown = _on_a_terminal("chats", "show", str(c.id), *plain)
            assert shown.endswith(b"\n"), shown[-40:]
