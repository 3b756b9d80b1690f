"""Asking the person before a tool call that changes things: the approval dialog over whichever chat is on
screen (naming the chat that asks when it is another one), its answer handed to the waiting engine thread.

The dialog is the app's, not a tool-call block's: the chat that asks may not be the one on screen, and then
it has no block to ask from. The blocks show the call as ``waiting`` meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from g3chat.tui.chat_tools import DENY

if TYPE_CHECKING:
    from textual.app import App

    from g3chat.core.tools.approval import ApprovalRequest
    from g3chat.tui.chat_tools import ApprovalReply
    from g3chat.tui.generation import GenerationJob


def ask_approval(
    app: App[Any],
    job: GenerationJob,
    request: ApprovalRequest,
    reply: ApprovalReply,
    *,
    chat: str | None,
    answered: Callable[[], None],
) -> None:
    """Open the dialog; its answer goes to ``reply`` (``stop`` denies and stops the answer), then
    ``answered()`` runs."""
    from g3chat.tui.screens.approval_screen import ApprovalScreen

    screen = ApprovalScreen(request, chat=chat)
    job.ui.approval = screen

    def done(answer: str | None) -> None:
        job.ui.approval = None
        if answer == "stop":
            job.cancel.set()  # before the reply: the loop sees the answer stopped
        reply.answer(answer if answer in ("once", "always") else DENY)
        answered()

    app.push_screen(screen, done)


def close_approval(job: GenerationJob) -> None:
    """The answer ended (stopped while the question was open): take its dialog away, as a denial."""
    if job.ui.approval is not None and job.ui.approval.is_current:
        job.ui.approval.dismiss("deny")
