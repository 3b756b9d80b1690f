"""Saving an answer while it streams, so that a killed process keeps what the user already read.

The answer's row is written when its first token arrives (status ``partial``) and rewritten at most every
:data:`EVERY_TOKENS` tokens or :data:`EVERY_SECONDS` seconds, whichever comes first; the final save replaces
it. While it streams, its meta carries ``writer``: the process writing it (pid, start time, host). A row whose
writer is gone (SIGKILL, OOM kill, a closed terminal, a power cut) was interrupted; ``StoredMessage``'s
``shown_status`` says so. SQLite's WAL makes each checkpoint one small transaction that survives a killed
process (the write is in the WAL before COMMIT returns) and never leaves the database half-written.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from g3chat.core.types import TextPart

if TYPE_CHECKING:
    from g3chat.core.store import Store

EVERY_TOKENS = 32
EVERY_SECONDS = 1.0


def _started(pid: int) -> float | None:
    """When process ``pid`` started, or None when there is no such process (a killed one not yet reaped by
    its parent, a zombie, counts as gone)."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return round(process.create_time(), 2)
    except (psutil.Error, OSError):
        return None


def writer_marker() -> dict[str, Any]:
    """This process, as the writer of a streaming answer."""
    pid = os.getpid()
    return {"pid": pid, "started": _started(pid), "host": socket.gethostname()}


def writer_alive(marker: Mapping[str, Any]) -> bool:
    """Whether the process that ``marker`` names still runs (the same pid and start time). On another host
    that cannot be known: taken to be alive (shown as streaming rather than wrongly as interrupted)."""
    if marker.get("host") != socket.gethostname():
        return True
    pid = marker.get("pid")
    if not isinstance(pid, int):
        return False
    started = _started(pid)
    return started is not None and started == marker.get("started")


class Checkpointer:
    """The streaming answer's row: :meth:`begin` inserts it, :meth:`tick` rewrites it when one is due."""

    def __init__(
        self,
        store: Store,
        conversation_id: int,
        *,
        model: str | None,
        meta: Mapping[str, Any],
        every_tokens: int = EVERY_TOKENS,
        every_seconds: float = EVERY_SECONDS,
    ) -> None:
        self.store = store
        self.conversation_id = conversation_id
        self.model = model
        self.meta = dict(meta)
        self.every_tokens = every_tokens
        self.every_seconds = every_seconds
        self.message_id: int | None = None
        self._tokens = 0
        self._pending = 0
        self._last = 0.0

    def begin(self, text: str) -> int:
        """Insert the answer's row with ``text``, its first token."""
        self._tokens = 1
        saved = self.store.add_message(
            self.conversation_id,
            "assistant",
            (TextPart(text),),
            model=self.model,
            status="partial",
            completion_tokens=1,
            meta={**self.meta, "writer": writer_marker()},
        )
        self.message_id = saved.id
        self._last = time.monotonic()
        return saved.id

    def tick(self, text: Callable[[], str]) -> None:
        """One more token; when a checkpoint is due, save ``text()``, the answer so far (built only then)."""
        self._tokens += 1
        self._pending += 1
        if self._pending >= self.every_tokens or time.monotonic() - self._last >= self.every_seconds:
            self.save(text())

    def save(self, text: str) -> None:
        if self.message_id is None:
            return
        self.store.checkpoint_message(self.message_id, text, self._tokens)
        self._pending = 0
        self._last = time.monotonic()
