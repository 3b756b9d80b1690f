"""The chat UI's side of hearing while the user speaks (see g3chat/core/engine/listening.py).

When the record key starts a recording and the engine is free, a :class:`~g3chat.core.engine.listening.
Listener` takes the engine (no answer starts meanwhile) and reads the recording into the cache as it is made,
as the next user turn of the open conversation: its history, then the tray's attachments and the recording.
When the clip is stored the listener finishes in a thread, the engine is handed back, and queued answers
start. A message sent in the meantime waits for it and then finds the clip in the cache. Anything that
differs by then (another conversation, other attachments) costs only the shortcut: the prompt's prefix
matching evaluates what does not match, as without listening. With tools on, the clip is read after the
tools' description, as the answer renders it; before the first answer has loaded the tools, nothing is read
early.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from g3chat.core.types import AttachmentPart, Message, user

if TYPE_CHECKING:
    from g3chat.core.engine.listening import Listener
    from g3chat.core.tools.model import Tool
    from g3chat.tui.app import G3ChatApp


class LiveHearing:
    """At most one listener at a time, for the app that owns the engine."""

    def __init__(self, app: G3ChatApp) -> None:
        self.app = app
        self.listener: Listener | None = None
        self.last: Listener | None = None  # the latest, for what it read (rows_read, error)
        self.finishing = False

    @property
    def active(self) -> bool:
        """A listener holds the engine (listening, or finishing the clip)."""
        return self.listener is not None or self.finishing

    def start(self, conversation_id: int | None, parts: Sequence[AttachmentPart]) -> Listener | None:
        """Listen to a recording about to start: the listener takes its sample blocks (None: not now)."""
        from g3chat.core.engine.listening import Listener, can_listen, live_part

        app = self.app
        engine = app.engine
        if engine is None or self.listener is not None or not app._engine_free() or not can_listen(engine):
            return None
        conversation = app.store.get_conversation(conversation_id) if conversation_id is not None else None
        tools: list[Tool] = []
        if app.tools.enabled(conversation):
            loaded = app.tools.described(engine)
            if loaded is None:
                return None  # loaded with the first answer: until then the answer's prompt is unknown
            tools = loaded
        if conversation_id is not None:
            history = app.store.history(conversation_id)
        else:
            system = app.settings.generation.system_prompt
            history = [Message.text_message("system", system)] if system.strip() else []
        if tools:  # the answer's prompt has the tools' description: listen after it
            from g3chat.core.tools.loop import prompt_with_tools

            history = prompt_with_tools(history, tools)
        live = live_part()
        app.engine_idle.clear()
        try:
            self.listener = self.last = Listener(engine, [*history, user("", [*parts, live])], live)
        except Exception:
            app.engine_idle.set()
            return None
        return self.listener

    def stop(self, part: AttachmentPart | None) -> None:
        """The recording ended (stored as ``part``; None: dropped): finish or cancel off the UI thread,
        then hand the engine back and start what waited."""
        listener, self.listener = self.listener, None
        if listener is None:
            return
        self.finishing = True

        def done() -> None:
            try:
                if part is None:
                    listener.cancel()
                else:
                    listener.finish(part)
            except Exception:
                pass  # the answer reads the clip after all (prefix matching)
            finally:
                self.finishing = False
                self.app.engine_idle.set()
                if self.app.is_running:
                    with contextlib.suppress(RuntimeError):  # the app is closing
                        self.app.call_from_thread(self.app.engine_released)

        threading.Thread(target=done, name="g3chat-heard", daemon=True).start()
