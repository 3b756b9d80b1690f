"""``g3chat ask -c`` on a conversation longer than the context window: trimmed as in the chat UI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from g3chat.core.context import answer_reserve
from g3chat.core.store import Store
from tests.conftest import run_cli

pytestmark = pytest.mark.model

CTX = 512
WORDS = ["river", "stone", "cloud", "field", "lamp", "bread"]


def long_conversation(home: Path, turns: int, words: int) -> int:
    """A conversation of ``turns`` user/answer pairs of about ``words`` words each, built in the store."""
    store = Store(home / "data" / "history.db")
    try:
        conversation = store.create_conversation("long")
        for turn in range(turns):
            text = " ".join(WORDS[(turn + i) % len(WORDS)] for i in range(words))
            store.add_message(conversation.id, "user", f"Turn {turn}: {text}?")
            store.add_message(conversation.id, "assistant", f"Answer {turn}: {text}.")
        return conversation.id
    finally:
        store.close()


def ask(env: dict[str, str], *args: str) -> tuple[dict, str]:
    proc = run_cli("ask", "--json", "--ctx", str(CTX), "--temperature", "0", *args, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr


def test_ask_continue_trims_a_conversation_longer_than_the_window(
    cli_env: dict[str, str], g3chat_home: Path
) -> None:
    longer = long_conversation(g3chat_home, turns=6, words=40)  # about 600 tokens: more than the window
    data, stderr = ask(cli_env, "-n", "4", "--chat", str(longer), "And now?")
    assert data["conversation_id"] == longer and data["text"]
    assert 0 < data["usage"]["prompt_tokens"] <= CTX - answer_reserve(CTX, 4)  # room for -n 4
    notes = [line for line in stderr.splitlines() if "left out" in line]
    assert len(notes) == 1 and notes[0].startswith("g3chat: note: ") and f"{CTX}-token" in notes[0], stderr

    # A conversation that still fits the window, but would leave the answer fewer tokens than it may have
    # (-n 64): trimmed too, as in the chat UI (before, the answer got what was left: about 40 tokens).
    nearly = long_conversation(g3chat_home, turns=5, words=36)
    data, stderr = ask(cli_env, "--chat", str(nearly), "-n", "64", "And now?")
    assert data["usage"]["prompt_tokens"] <= CTX - 64 and "left out" in stderr
