"""The answer is saved while it streams: a SIGKILL keeps what was on screen, shown as interrupted."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from g3chat.core.chat import Turn
from g3chat.core.checkpoint import writer_marker
from g3chat.core.store import Store
from g3chat.core.types import GenerationParams, Message, TextDelta
from tests.conftest import REPO, run_cli

STORY = "Write a long story about the sea"
# Greedy: a sampled answer's length depends on the CPU's float rounding (seed 5 stopped after 8 tokens on
# one machine, before the kill); greedy decoding of the base model runs on to the token limit.
LONG = ["ask", "--plain", "-n", "400", "--temperature", "0", STORY]


def _stream_then_kill(args: list[str], env: dict[str, str], *, min_bytes: int, min_seconds: float) -> str:
    """Run ``g3chat ARGS``, read its answer as it streams, SIGKILL it once it has printed ``min_bytes`` and
    streamed for ``min_seconds``; return what it printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "g3chat", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **env},
        cwd=REPO,
    )
    assert proc.stdout is not None
    out = b""
    first: float | None = None
    deadline = time.monotonic() + 240  # a busy machine decodes the test model at a few tokens a second
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.1)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                out += chunk
                first = first or time.monotonic()
            if first and len(out) >= min_bytes and time.monotonic() - first >= min_seconds:
                proc.send_signal(signal.SIGKILL)
                break
        else:
            raise AssertionError(f"no answer streamed in time: {out!r}")
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, f"it ended by itself before the kill: {err.decode()[-500:]}"
    return out.decode("utf-8", errors="ignore")


def _check_interrupted(home: Path, printed: str) -> None:
    with Store(home / "data" / "history.db") as store:
        conversation = store.latest_conversation()
        assert conversation is not None
        user, answer = store.messages(conversation.id)
    assert user.text == STORY
    assert answer.shown_status == "interrupted" and answer.status == "partial"
    assert answer.text.strip(), "nothing of the streamed answer was kept"
    assert printed.startswith(answer.text), (answer.text, printed)
    # Streamed for 2 s: at least one checkpoint after the first token's insert (one is due every second).
    assert (answer.completion_tokens or 0) >= 2
    shown = run_cli("chats", "show", str(conversation.id), "--plain")
    assert "## Assistant (interrupted)" in shown.stdout and answer.text.strip() in shown.stdout


@pytest.mark.model
def test_sigkill_during_ask_keeps_the_streamed_answer(cli_env: dict[str, str], g3chat_home: Path) -> None:
    printed = _stream_then_kill(LONG, cli_env, min_bytes=100, min_seconds=2.0)
    _check_interrupted(g3chat_home, printed)


@pytest.mark.model
def test_sigkill_during_ask_with_a_server_keeps_the_streamed_answer(
    llama_server: Any, g3chat_home: Path
) -> None:
    env = {
        "G3CHAT_ENGINE__BASE_URL": llama_server.url,
        "G3CHAT_ENGINE__API_KEY_ENV": "G3TEST_CHECKPOINT_KEY",
        "G3TEST_CHECKPOINT_KEY": llama_server.api_key,
    }
    printed = _stream_then_kill(LONG, env, min_bytes=100, min_seconds=2.0)
    _check_interrupted(g3chat_home, printed)


def _stream(engine: Any, store: Store, every: tuple[int, float]) -> tuple[list[str], list[str], Turn]:
    """Run one real turn; after each token, what the database holds for the answer."""
    conversation = store.create_conversation("c")
    store.add_message(conversation.id, "user", "Once upon a time")
    params = GenerationParams(temperature=0.0, max_tokens=30)
    turn = Turn(
        engine,
        [Message.text_message("user", "Once upon a time")],
        params,
        store=store,
        conversation_id=conversation.id,
        model_name="test",
        checkpoint_every=every,
    )
    texts: list[str] = []
    saved: list[str] = []
    for event in turn:
        if isinstance(event, TextDelta):
            texts.append(turn.result.text)
            assert turn._checkpoints is not None and turn._checkpoints.message_id is not None
            row = store.get_message(turn._checkpoints.message_id)
            assert row.shown_status == "streaming" and row.status == "partial"
            saved.append(row.text)
    return texts, saved, turn


@pytest.mark.model
def test_checkpoints_every_n_tokens(engine: Any, tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as store:
        texts, saved, turn = _stream(engine, store, (8, 1e9))
        assert len(texts) > 17
        for k, held in enumerate(saved, start=1):
            last = 1 + (k - 1) // 8 * 8  # the first token inserts the row, then every 8th saves it
            assert held == texts[last - 1], k
        final = turn.saved
        assert final is not None and final.shown_status == "complete" and "writer" not in final.meta
        assert final.text == turn.result.text and final.id == turn._checkpoints.message_id
        assert [m.role for m in store.messages(final.conversation_id)] == ["user", "assistant"]


@pytest.mark.model
def test_checkpoints_every_second_even_when_tokens_are_few(engine: Any, tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as store:
        texts, saved, _ = _stream(engine, store, (10**6, 0.0))
        assert saved == texts  # a zero-second interval: every token is due


def test_shown_status_follows_the_writer(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as store:
        c = store.create_conversation("c")
        ours = store.add_message(
            c.id, "assistant", "so far", status="partial", meta={"writer": writer_marker()}
        )
        assert ours.shown_status == "streaming"
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        child.wait()
        dead = {"pid": child.pid, "started": 1.0, "host": socket.gethostname()}
        gone = store.add_message(c.id, "assistant", "so far", status="partial", meta={"writer": dead})
        assert gone.shown_status == "interrupted"
        reused = {**writer_marker(), "started": 1.0}  # our pid, another process's start time
        assert store.add_message(
            c.id, "assistant", "x", status="partial", meta={"writer": reused}
        ).shown_status == ("interrupted")
        elsewhere = {**dead, "host": "another-machine"}
        far = store.add_message(c.id, "assistant", "x", status="partial", meta={"writer": elsewhere})
        assert far.shown_status == "streaming"
        done = store.update_message(gone.id, status="complete", meta={})
        assert done.shown_status == "complete"


def test_an_interrupted_answer_that_said_nothing_is_left_out_of_the_prompt(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as store:
        c = store.create_conversation("c")
        store.add_message(c.id, "user", "hi")
        store.add_message(c.id, "assistant", "", status="partial")
        store.add_message(c.id, "user", "again")
        assert [m.role for m in store.history(c.id)] == ["user", "user"]
