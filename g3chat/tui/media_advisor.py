"""What the loaded model can do with attachments, said at the two moments it helps: when a file is attached
(why the model cannot take it, or what a video's frames cost) and when the answer to a message with
attachments starts.

Token costs ask the engine, which one thread at a time may use: the advisor asks only from the UI thread,
and only while no worker holds the engine (workers are started from the UI thread too, so none can start in
between). What the model cannot take is a flag check, safe at any time once it is loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual.notifications import SeverityLevel

from g3chat.core.engine.base import Engine
from g3chat.core.media import support
from g3chat.core.store import Store
from g3chat.core.types import AttachmentPart, Message, user


class MediaAdvisor:
    """``engine()`` is the loaded engine (None while loading or failed); ``engine_free()`` says no worker
    is using it."""

    def __init__(
        self, store: Store, engine: Callable[[], Engine | None], engine_free: Callable[[], bool]
    ) -> None:
        self.store = store
        self._engine = engine
        self._engine_free = engine_free
        self._fresh: set[int] = set()  # sent messages with attachments whose answer has not started

    def problem(self, parts: Sequence[AttachmentPart]) -> str | None:
        """Why the loaded model cannot take some of ``parts``; None when it can, or is not loaded yet."""
        engine = self._engine()
        if engine is None:
            return None
        found = support.problems(engine, list(parts))
        return support.explain(found) if found else None

    def on_attach(
        self, parts: Sequence[AttachmentPart], conversation_id: int | None
    ) -> tuple[str, SeverityLevel] | None:
        """What to tell the person about files just attached: ``(text, severity)``, or None."""
        problem = self.problem(parts)
        if problem is not None:
            return problem, "warning"
        frames = [p for p in parts if p.source is not None]
        if not frames:
            return None
        engine = self._engine()
        if engine is None or not self._engine_free():
            note = (
                f"{frames[0].source}: {len(frames)} frames; their token cost is shown when the answer starts"
            )
            return note, "information"
        history = self.store.history(conversation_id) if conversation_id is not None else []
        return f"{frames_cost(engine, frames, history)} (sent with your next message)", "information"

    def sent(self, message_id: int) -> None:
        """A message with attachments was sent: its notes are due when its answer starts."""
        self._fresh.add(message_id)

    def notes(self, conversation_id: int) -> list[str]:
        """Notes on the message an answer is for: called as it starts, before its worker takes the engine."""
        path = self.store.messages(conversation_id)
        if not path or path[-1].id not in self._fresh:
            return []
        self._fresh.discard(path[-1].id)
        parts = path[-1].to_message().attachments
        problem = self.problem(parts)
        if problem is not None:
            return [f"⚠ {problem}"]
        frames = [p for p in parts if p.source is not None]
        engine = self._engine()
        if not frames or engine is None:
            return []
        return [f"ⓘ {frames_cost(engine, frames, [m.to_message() for m in path[:-1]])}"]


def frames_cost(engine: Engine, frames: Sequence[AttachmentPart], history: Sequence[Message]) -> str:
    """``clip.mp4: 8 frames, 2,048 prompt tokens`` (asks the engine: only while no worker uses it)."""
    cost = support.token_cost(engine, list(history), user("", frames))
    sources = ", ".join(dict.fromkeys(p.source or "" for p in frames))
    return f"{sources}: {len(frames)} frames, {cost:,} prompt tokens"
