"""`ask --editor` and `ask --role` end to end with the real test model (a few tokens each), and the
precedence of sampling settings (config < conversation < role < flags)."""

from __future__ import annotations

import json
import sqlite3
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from g3chat.cli.ask_compose import sampling, switched_params, with_role
from g3chat.cli.ask_options import AskOptions
from g3chat.core.roles import LoadedRole, Role
from g3chat.core.types import GenerationParams
from tests.conftest import run_cli


def rows(home: Path, sql: str) -> list[Any]:
    db = sqlite3.connect(home / "data" / "history.db")
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def fake_editor(folder: Path, body: str) -> str:
    """A real editor program for $VISUAL: a Python script that edits the file it is given."""
    path = folder / "editor.py"
    path.write_text(f"#!{sys.executable}\nimport sys\npath = sys.argv[-1]\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return f"{path} --wait"  # an argument, as in EDITOR="code --wait"


def test_precedence_config_conversation_role_flags() -> None:
    role = LoadedRole(
        "r", Role(system_prompt="Be terse.", temperature=0.2, top_k=5, tools=True), Path("r"), True
    )
    defaults = GenerationParams(temperature=1.0, top_k=64, top_p=0.95)
    own = {"temperature": 0.7, "top_p": 0.5, "role": "old"}
    params = sampling(defaults, AskOptions(top_k=9), own, role)
    assert (params.temperature, params.top_k, params.top_p) == (0.2, 9, 0.5)
    assert sampling(defaults, AskOptions(), own).temperature == 0.7  # ask -c keeps the conversation's
    opts = with_role(AskOptions(system="Mine."), role, {})
    assert opts.system == "Mine." and opts.tools == "all"
    opts = with_role(AskOptions(tools="read_file"), role, {})
    assert opts.system == "Be terse." and opts.tools == "read_file"
    assert with_role(AskOptions(), None, {"tools": True}).tools == "all"
    assert with_role(AskOptions(), None, {}).tools is None
    # ask -c --role: the old role's settings give way to the new one's; other keys stay.
    switched = switched_params({"role": "old", "top_p": 0.5, "tools": False, "other": 1}, role)
    assert switched == {"other": 1, "role": "r", "temperature": 0.2, "top_k": 5, "tools": True}


def test_empty_editor_file_cancels_and_a_failing_editor_is_exit_2(
    cli_env: dict[str, str], g3chat_home: Path, tmp_path: Path
) -> None:
    emptied = fake_editor(tmp_path, "open(path, 'w').write('  \\n\\n')")
    proc = run_cli("ask", "--editor", "draft", env={**cli_env, "VISUAL": emptied})
    assert proc.returncode == 130
    assert proc.stderr == "g3chat: the message was empty; nothing was sent\n" and proc.stdout == ""
    assert not (g3chat_home / "data" / "history.db").exists()
    proc = run_cli("ask", "-e", "draft", env={**cli_env, "VISUAL": "", "EDITOR": "false"})
    assert (
        proc.returncode == 2
        and proc.stderr == "g3chat: the editor 'false' exited with status 1; nothing was sent\n"
    )
    proc = run_cli("ask", "-e", "draft", env={**cli_env, "VISUAL": str(tmp_path / "missing-editor")})
    assert proc.returncode == 2 and proc.stderr.startswith("g3chat: cannot start the editor")
    assert proc.stderr.count("\n") == 1


@pytest.mark.model
def test_role_then_continue_in_the_editor(cli_env: dict[str, str], g3chat_home: Path, tmp_path: Path) -> None:
    """`ask --role` stores the role with the conversation; `ask -c -e` keeps it and sends what the editor
    saved, the editor's file pre-filled with the prompt argument and piped stdin."""
    proc = run_cli("ask", "--role", "shell", "--json", "-n", "1", "list files", env=cli_env)
    assert proc.returncode == 0, proc.stderr
    first = json.loads(proc.stdout)
    assert first["role"] == "shell"
    [(system, params)] = rows(g3chat_home, "SELECT system_prompt, params FROM conversations")
    assert "exactly one command" in system
    assert json.loads(params) == {"role": "shell", "temperature": 0.2, "tools": False}

    seen = tmp_path / "seen.txt"
    editor = fake_editor(
        tmp_path,
        f"open({str(seen)!r}, 'w').write(open(path).read())\nopen(path, 'a').write('\\nEdited here.\\n')",
    )
    env = {**cli_env, "VISUAL": editor, "EDITOR": "false"}
    proc = run_cli("ask", "-c", "-e", "--json", "-n", "1", "and hidden ones:", env=env, input="piped notes\n")
    assert proc.returncode == 0, proc.stderr
    assert seen.read_text() == "and hidden ones:\n\npiped notes"
    second = json.loads(proc.stdout)
    assert second["role"] == "shell" and second["conversation_id"] == first["conversation_id"]
    saved = rows(g3chat_home, "SELECT content FROM messages WHERE role='user' ORDER BY id")
    assert [json.loads(r[0])[0]["text"] for r in saved] == [
        "list files",
        "and hidden ones:\n\npiped notes\nEdited here.",
    ]
    # The role's system prompt was in the prompt both times: the second one holds the first exchange too.
    assert second["usage"]["prompt_tokens"] > first["usage"]["prompt_tokens"] > 60
    assert rows(g3chat_home, "SELECT count(*) FROM conversations") == [(1,)]
