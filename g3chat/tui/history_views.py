"""A conversation's branch as message views, tool calls as blocks in the answers that made them (an
answer's ``ToolCallPart`` parts, matched by id to the ``ToolResultPart`` parts of the user turn after it,
which is not shown as a message of its own)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from g3chat.core.store import StoredMessage
from g3chat.core.types import ToolCallPart, ToolResultPart
from g3chat.tui.widgets.message_view import MessageView
from g3chat.tui.widgets.tool_call_block import ToolCallBlock

ViewFor = Callable[[StoredMessage, "tuple[int, int] | None"], MessageView]


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


def history_views(
    path: Sequence[StoredMessage],
    positions: Mapping[int, tuple[int, int]],
    view_for: ViewFor,
    *,
    running: bool = False,
) -> list[MessageView]:
    """The views of a branch (``running``: its answer is being generated now)."""
    results = {
        p.call_id: p for m in path if is_tool_results(m) for p in m.parts if isinstance(p, ToolResultPart)
    }
    calls = {p.id for m in path for p in m.parts if isinstance(p, ToolCallPart)}
    views: list[MessageView] = []
    for message in path:
        if is_tool_results(message):
            # Results without a call: what the model wrote could not be read as one.
            unread = [p for p in message.parts if isinstance(p, ToolResultPart) and p.call_id not in calls]
            if unread and views and views[-1].role == "assistant":
                views[-1].blocks.extend(result_block(p) for p in unread)
            continue
        view = view_for(message, positions.get(message.id))
        view.blocks.extend(
            call_block(p, results.get(p.id), running) for p in message.parts if isinstance(p, ToolCallPart)
        )
        views.append(view)
    return views
