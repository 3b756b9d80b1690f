"""The chat UI's side of composing in an editor (g3chat.core.editor does the work).

On a terminal the UI suspends (Textual's ``App.suspend``) and the editor gets the screen, as ``git
commit`` does; the event loop waits for it, which is what suspending means. Where the driver cannot suspend
(Textual's headless driver under Pilot, Textual Web) there is no terminal to hand over, so the editor runs
in a thread instead and the UI stays live: a GUI editor (``code --wait``) works there, and so do tests.
"""

from __future__ import annotations

import asyncio
from typing import Any

from textual.app import App, SuspendNotSupported

from g3chat.core.editor import EditorError, edit_text

EMPTY = "The editor left the message empty; it is unchanged."


async def edit_in_editor(app: App[Any], text: str) -> str | None:
    """What the user saved in their editor, starting from ``text``; None (with a notification) when the
    editor failed or the result is empty."""
    try:
        try:
            with app.suspend():
                edited = edit_text(text)
        except SuspendNotSupported:
            edited = await asyncio.to_thread(edit_text, text)
    except EditorError as exc:
        app.notify(str(exc), severity="error", markup=False)
        return None
    if not edited.strip():
        app.notify(EMPTY, markup=False)
        return None
    return edited.rstrip("\n")
