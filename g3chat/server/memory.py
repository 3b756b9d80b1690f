"""The answers this server gave, by what a client sends back, so a re-sent conversation hits the KV cache.

A chat client re-sends the whole conversation every turn, our earlier answers as plain text (or as
``tool_calls``). Re-tokenized, that text need not be the tokens the model generated, and the KV cache
holds the generated ones: from the first difference on, everything would be evaluated again. The memory
keeps each answer's token ids (and, for tool calls, the raw text the model wrote, which the re-rendered
calls would not match byte for byte) so the engine renders the answer exactly as it was generated
(see ``Message.tokens``). Bounded: the oldest entries go first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from g3chat.core.types import Message, TextPart, ToolCallPart

MAX_ENTRIES = 512


class AnswerMemory:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Any, tuple[str, tuple[int, ...], Any]] = OrderedDict()
        self._lock = threading.Lock()  # remembered on the engine's thread, recalled on the server's

    def remember(self, content: str, calls: Sequence[ToolCallPart], raw: str, ids: Sequence[int]) -> None:
        """The answer sent as ``content`` and ``calls`` was generated as ``raw``, token ``ids``."""
        if not ids:
            return
        key = ("calls", tuple(c.id for c in calls)) if calls else ("text", content.strip())
        check = [(c.name, c.arguments) for c in calls]
        with self._lock:
            self._entries[key] = (raw, tuple(ids), check)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def recall(self, content: str, calls: Sequence[ToolCallPart]) -> Message | None:
        """The assistant message to render for what the client sent back, or None when it is not ours."""
        key = ("calls", tuple(c.id for c in calls)) if calls else ("text", content.strip())
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
        if entry is None:
            return None
        raw, ids, check = entry
        if check != [(c.name, c.arguments) for c in calls]:
            return None  # the client changed the calls: render what it sent
        if calls and content.strip() and content.strip() not in raw:
            return None
        return Message("assistant", (TextPart(raw if calls else content),), tokens=ids)

    def __len__(self) -> int:
        return len(self._entries)
