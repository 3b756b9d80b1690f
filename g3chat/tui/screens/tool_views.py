"""The chat screen's side of tool calls: blocks under the answer that made the calls, live while it runs and
rebuilt from the history (an answer's ``ToolCallPart`` parts, matched by id to the ``ToolResultPart`` parts
of the user turn after it, which is not shown as a message of its own)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from g3chat.core.store import StoredMessage
from g3chat.core.types import ToolCallPart, ToolResultPart
from g3chat.tui.widgets.message_view import MessageView
from g3chat.tui.widgets.tool_call_block import ToolCallBlock

if TYPE_CHECKING:
    from g3chat.tui.generation import GenerationJob
    from g3chat.tui.messages import AnswerFinished
    from g3chat.tui.screens.chat_screen import ChatScreen

    _Base = ChatScreen
else:
    _Base = object


def is_tool_results(message: StoredMessage) -> bool:
    """A user turn that only carries tool results back to the model."""
    return (
        message.role == "user"
        and bool(message.parts)
        and all(isinstance(p, ToolResultPart) for p in message.parts)
    )


def result_block(result: ToolResultPart) -> ToolCallBlock:
    return ToolCallBlock(result.call_id, result.name, {}, result=result.content, status=result.status)


def call_block(call: ToolCallPart, result: ToolResultPart | None, running: bool = False) -> ToolCallBlock:
    if result is None and running:  # the answer is being generated: its result is on the way
        return ToolCallBlock(call.id, call.name, call.arguments)
    if result is None:  # the answer was stopped before this call ran
        return ToolCallBlock(call.id, call.name, call.arguments, result="not run", status="error")
    return ToolCallBlock(call.id, call.name, call.arguments, result=result.content, status=result.status)


class ToolViews(_Base):
    def history_views(
        self, path: Sequence[StoredMessage], positions: Mapping[int, tuple[int, int]]
    ) -> list[MessageView]:
        """The views of a branch: tool calls as blocks in the answers that made them."""
        results = {
            p.call_id: p for m in path if is_tool_results(m) for p in m.parts if isinstance(p, ToolResultPart)
        }
        calls = {p.id for m in path for p in m.parts if isinstance(p, ToolCallPart)}
        running = bool(path) and self.g3.is_generating(path[0].conversation_id)
        views: list[MessageView] = []
        for message in path:
            if is_tool_results(message):
                # Results without a call: what the model wrote could not be read as one.
                unread = [
                    p for p in message.parts if isinstance(p, ToolResultPart) and p.call_id not in calls
                ]
                if unread and views and views[-1].role == "assistant":
                    views[-1].blocks.extend(result_block(p) for p in unread)
                continue
            view = self.view_for(message, positions.get(message.id))
            view.blocks.extend(
                call_block(p, results.get(p.id), running)
                for p in message.parts
                if isinstance(p, ToolCallPart)
            )
            views.append(view)
        return views

    # ------------------------------------------------------------------------------ while it runs

    def _blocks(self) -> list[ToolCallBlock]:
        return list(self.chat.query(ToolCallBlock))

    async def tool_call_began(self, job: GenerationJob, call: ToolCallPart) -> None:
        """Close the answer's text so far and show the call under it; later text starts a new message."""
        streaming = job.ui.view if job.ui.view is not None and job.ui.view.is_attached else None
        job.ui.view, job.ui.text = None, ""  # the text so far is saved with the call; what follows: a new one
        if job.conversation_id != self.conversation_id:
            return
        view = streaming or job.ui.tool_view
        if view is None or not view.is_attached:
            return
        if streaming is not None and view is streaming:
            await streaming.end_stream(streaming.text)
        job.ui.tool_view = view
        await view.mount(ToolCallBlock(call.id, call.name, call.arguments))
        self.chat.scroll_end(animate=False)

    def tool_waiting(self, job: GenerationJob) -> None:
        running = [b for b in self._blocks() if b.status == "running"]
        if running and job.conversation_id == self.conversation_id:
            running[-1].set_status("waiting")

    def tool_call_ended(self, call: ToolCallPart, result: ToolResultPart) -> None:
        for block in self._blocks():
            if block.call_id == call.id:
                block.set_status(result.status, result.content)

    async def tools_finished(self, event: AnswerFinished) -> bool:
        """After an answer that called tools, show it as the history has it (each step its own message)."""
        job = event.job
        job.ui.done = True
        if job.ui.approval is not None and job.ui.approval.is_current:
            job.ui.approval.dismiss("deny")  # the answer was stopped while the question was open
        if not event.tool_calls:
            return False
        self.refresh_sidebar()
        if job.conversation_id == self.conversation_id:
            await self.reload()
        return True
