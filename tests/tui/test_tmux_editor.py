"""Ctrl+E on a real terminal: the chat UI suspends, the editor has the screen, and the text comes back."""

from __future__ import annotations

import shutil
import stat
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.tui.test_tmux import Tmux, start_g3chat, tmux  # noqa: F401 (tmux: the fixture)

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (see .ci/run)"),
]


def test_ctrl_e_suspends_the_ui_while_the_editor_runs(
    tmux: Tmux,  # noqa: F811
    test_model_path: Path,
    g3chat_home: Path,
    tmp_path: Path,
) -> None:
    go = tmp_path / "go"
    editor = tmp_path / "editor.py"
    editor.write_text(
        f"#!{sys.executable}\nimport os, sys, time\npath = sys.argv[-1]\n"
        "print('EDITOR-HAS-THE-SCREEN:', open(path).read(), flush=True)\n"
        f"while not os.path.exists({str(go)!r}):\n    time.sleep(0.05)\n"
        "open(path, 'a').write(' and the editor')\n"
    )
    editor.chmod(editor.stat().st_mode | stat.S_IXUSR)
    start_g3chat(tmux, g3chat_home, test_model_path, {"G3CHAT_ENGINE__N_CTX": "512", "VISUAL": str(editor)})
    tmux.run("send-keys", "-t", "g3", "-l", "typed in the UI")
    tmux.wait_for(lambda s: "typed in the UI" in s, 30, "the typed text")
    tmux.run("send-keys", "-t", "g3", "C-e")
    screen = tmux.wait_for(lambda s: "EDITOR-HAS-THE-SCREEN" in s, 30, "the editor")
    assert "EDITOR-HAS-THE-SCREEN: typed in the UI" in screen, screen
    assert "ready" not in screen, screen  # the UI is away
    go.touch()
    screen = tmux.wait_for(lambda s: "typed in the UI and the editor" in s, 30, "the UI to come back")
    assert "EDITOR-HAS-THE-SCREEN" not in screen and "ready" in screen, screen
    tmux.run("send-keys", "-t", "g3", "C-q")


def test_ask_editor_gets_the_terminal_when_stdin_is_a_pipe(tmux: Tmux, tmp_path: Path) -> None:  # noqa: F811
    """`git diff | g3chat ask -e`: the editor still needs the keyboard and screen, so it gets /dev/tty."""
    seen = tmp_path / "seen.txt"
    editor = tmp_path / "editor.py"
    editor.write_text(
        f"#!{sys.executable}\nimport os, sys\npath = sys.argv[-1]\n"
        f"open({str(seen)!r}, 'w').write(f'{{os.isatty(0)}} {{os.isatty(1)}} ' + open(path).read())\n"
        "open(path, 'w').write('')\n"  # saved empty: cancelled, so no model is needed
    )
    editor.chmod(editor.stat().st_mode | stat.S_IXUSR)
    env = f"G3CHAT_HOME={str(tmp_path / 'home')!r} VISUAL={str(editor)!r} PYTHONPATH={str(REPO)!r}"
    command = (
        f"echo piped | env {env} {sys.executable} -m g3chat ask -e > {str(tmp_path / 'out')!r}; echo RC-$?"
    )
    tmux.run(
        "new-session", "-d", "-s", "g3", "-x", "100", "-y", "10", f"cd {str(REPO)!r} && {command}; sleep 30"
    )
    tmux.wait_for(lambda s: "RC-" in s, 30, "g3chat to exit")
    assert "RC-130" in tmux.screen() and seen.read_text() == "True True piped\n"
