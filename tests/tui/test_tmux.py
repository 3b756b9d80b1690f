"""A real terminal: `g3chat` under tmux with the offline test model. Type a message, read the streamed
reply off the screen with capture-pane, quit, and check the history database."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from g3chat.core.store import Store
from tests.conftest import REPO

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (see .ci/run)"),
]


class Tmux:
    def __init__(self) -> None:
        self.socket = f"g3chat-test-{uuid.uuid4().hex[:8]}"

    def run(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=30)
        return done.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "g3")

    def wait_for(self, check: Callable[[str], bool], timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.screen()
            if check(text):
                return text
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; the screen shows:\n{self.screen()}")


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    t = Tmux()
    yield t
    t.run("kill-server")


def start_g3chat(tmux: Tmux, home: Path, model: Path, settings: dict[str, str], *, then: str = "") -> None:
    """Start `python -m g3chat` in a 110x32 tmux pane with ``settings`` (G3CHAT_* variables) and wait until
    the model is loaded. ``then``: shell to run after it, else g3chat replaces the shell (``exec``), so the
    pane's pid is g3chat's."""
    env = {
        "G3CHAT_HOME": str(home),
        "G3CHAT_MODEL": str(model),
        "G3CHAT_ENGINE__THREADS": "1",
        **settings,
        "PYTHONPATH": os.environ.get("PYTHONPATH", str(REPO)),
        "TERM": "xterm-256color",
    }
    exports = " ".join(f"{k}={v!r}" for k, v in env.items())
    run = f"env {exports} {sys.executable} -m g3chat"
    command = f"cd {str(REPO)!r} && " + (f"{run}; {then}" if then else f"exec {run}")
    tmux.run("new-session", "-d", "-s", "g3", "-x", "110", "-y", "32", command)
    tmux.wait_for(lambda s: "ready" in s, 120, "the model to load")


def test_chat_in_a_real_terminal(tmux: Tmux, test_model_path: Path, g3chat_home: Path) -> None:
    settings = {
        "G3CHAT_ENGINE__N_CTX": "512",
        "G3CHAT_GENERATION__MAX_TOKENS": "12",
        "G3CHAT_GENERATION__TEMPERATURE": "0",
    }
    start_g3chat(tmux, g3chat_home, test_model_path, settings, then="echo G3CHAT-EXITED-$?; sleep 60")
    tmux.run("send-keys", "-t", "g3", "-l", "The capital of France is")
    tmux.run("send-keys", "-t", "g3", "Enter")
    db = g3chat_home / "data" / "history.db"

    def answered() -> str | None:
        with Store(db) as store:
            conversation = store.latest_conversation()
            if conversation is None:
                return None
            path = store.messages(conversation.id)
            # The answer's row exists from its first token on (a checkpoint); wait for the final save.
            done = len(path) == 2 and path[-1].shown_status == "complete"
            return path[-1].text if done else None

    deadline = time.monotonic() + 120
    while answered() is None and time.monotonic() < deadline:
        time.sleep(0.3)
    answer = answered()
    assert answer is not None, tmux.screen()
    screen = tmux.wait_for(lambda s: "ready" in s.splitlines()[0], 30, "the answer to finish")
    assert "The capital of France is" in screen  # the message, in the chat (and the sidebar)
    shown = " ".join(screen.split())
    words = re.findall(r"[A-Za-z]{3,}", answer)[:3]
    assert words, f"greedy decoding gave no words: {answer!r}"
    for word in words:
        assert word in shown, f"{word!r} of the answer {answer!r} is not on the screen:\n{screen}"
    tmux.run("send-keys", "-t", "g3", "C-q")
    tmux.wait_for(lambda s: "G3CHAT-EXITED-0" in s, 30, "g3chat to exit")
    with Store(db) as store:
        saved = store.messages(store.latest_conversation().id)
        assert [m.role for m in saved] == ["user", "assistant"] and saved[1].status == "complete"


def test_sigkill_of_the_chat_ui_keeps_the_streamed_answer(
    tmux: Tmux, test_model_path: Path, g3chat_home: Path
) -> None:
    """The chat UI checkpoints the answer as it streams: killed with SIGKILL mid-answer, the history keeps
    what was on screen, shown as interrupted."""
    import signal

    settings = {
        "G3CHAT_ENGINE__N_CTX": "1024",
        "G3CHAT_GENERATION__MAX_TOKENS": "600",
        "G3CHAT_GENERATION__TEMPERATURE": "0",  # greedy: a sampled answer may end early on another CPU
    }
    start_g3chat(tmux, g3chat_home, test_model_path, settings)  # exec: the pane's pid is g3chat's
    pid = int(tmux.run("display-message", "-p", "-t", "g3", "#{pane_pid}").strip())
    tmux.run("send-keys", "-t", "g3", "-l", "Write a long story about the sea")
    tmux.run("send-keys", "-t", "g3", "Enter")
    db = g3chat_home / "data" / "history.db"

    def streamed() -> bool:  # the answer's row exists and a checkpoint has rewritten it since its insert
        with Store(db) as store:
            conversation = store.latest_conversation()
            path = store.messages(conversation.id) if conversation is not None else []
            return len(path) == 2 and (path[1].completion_tokens or 0) >= 2

    deadline = time.monotonic() + 120
    while not streamed() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert streamed(), tmux.screen()
    time.sleep(1.5)  # a little more on screen, and at least one more checkpoint
    screen = " ".join(tmux.screen().split())
    os.kill(pid, signal.SIGKILL)
    import psutil

    def dead() -> bool:  # kill() returns before the process is gone
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    deadline = time.monotonic() + 10
    while not dead() and time.monotonic() < deadline:
        time.sleep(0.05)
    with Store(db) as store:
        user, answer = store.messages(store.latest_conversation().id)
    assert user.text == "Write a long story about the sea"
    assert answer.shown_status == "interrupted" and answer.text.strip()
    words = re.findall(r"[A-Za-z]{4,}", answer.text)[:3]
    for word in words:  # what was saved had been on screen
        assert word in screen, f"{word!r} of {answer.text!r} is not on the screen:\n{screen}"
