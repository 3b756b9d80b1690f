"""The app's side of tool calls: show each call as it starts and ends, and ask before one that changes
things (the engine thread waits on the answer; see :mod:`g3chat.tui.chat_tools`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from g3chat.tui import messages as msg
from g3chat.tui.chat_tools import DENY

if TYPE_CHECKING:
    from g3chat.tui.app import G3ChatApp

    _Base = G3ChatApp
else:
    _Base = object


class ToolEvents(_Base):
    async def on_tool_call_began(self, event: msg.ToolCallBegan) -> None:
        job = event.job
        if job is not self.job or not self.ui_alive():
            return
        await self._show_new_text(job)  # the words before the call come first
        await self.chat_screen.tool_call_began(job, event.call)
        self.chat_screen.header.set_status(f"running {event.call.name or 'a tool'}… (Esc stops)", "busy")

    def on_tool_call_ended(self, event: msg.ToolCallEnded) -> None:
        if event.job is not self.job or not self.ui_alive():
            return
        self.chat_screen.tool_call_ended(event.call, event.result)
        self.show_model_state()

    def on_approval_needed(self, event: msg.ApprovalNeeded) -> None:
        from g3chat.tui.screens.approval_screen import ApprovalScreen

        job, reply = event.job, event.reply
        if job is not self.job or job.cancel.is_set() or not self.ui_alive():
            reply.answer(DENY)
            return
        elsewhere = job.conversation_id != self.chat_screen.conversation_id  # say which chat asks
        title = self.store.get_conversation(job.conversation_id).title if elsewhere else None
        screen = ApprovalScreen(event.request, chat=title or ("another chat" if elsewhere else None))
        job.ui.approval = screen
        self.chat_screen.tool_waiting(job)
        self.chat_screen.header.set_status(f"{event.request.tool} waits for your approval", "busy")

        def answered(answer: str | None) -> None:
            job.ui.approval = None
            if answer == "stop":
                job.cancel.set()  # before the reply: the loop sees the answer stopped
            reply.answer(answer if answer in ("once", "always") else DENY)
            self.show_model_state()

        self.push_screen(screen, answered)

    def on_tools_notice(self, event: msg.ToolsNotice) -> None:
        if self.ui_alive():
            self.notify(event.text, title="Tools", severity=event.severity, timeout=12, markup=False)
