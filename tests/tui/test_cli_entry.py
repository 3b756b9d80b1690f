"""`g3chat` with no command opens the chat UI; without a terminal it says so instead."""

from __future__ import annotations

from tests.conftest import run_cli


def test_without_a_terminal_points_to_ask() -> None:
    proc = run_cli()
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "g3chat: the chat UI needs a terminal; for scripts and pipes use `g3chat ask`"
    )
    assert "Traceback" not in proc.stderr


def test_help_lists_the_chat_ui_options() -> None:
    proc = run_cli("--help")
    assert proc.returncode == 0
    for option in ("--model", "--ctx", "--threads", "--chat", "--continue", "--verbose"):
        assert option in proc.stdout
