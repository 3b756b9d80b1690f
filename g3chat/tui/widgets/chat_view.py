"""The conversation: a scrolling column of messages and notices that follows new text.

Only the latest messages are mounted when a conversation opens (Markdown widgets are not free: a long
answer is dozens of widgets); earlier ones are mounted a batch at a time when the view is scrolled to the
top, the marker is clicked, or something (a search hit, the keyboard) needs one of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual import events
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from g3chat.tui.widgets.message_view import MessageView
from g3chat.tui.widgets.tool_call_block import ToolCallBlock

EMPTY_TEXT = "Type a message below and press Enter. Ctrl+P lists every action."
WINDOW = 10  # messages mounted at first, and per batch after


class ChatView(VerticalScroll, can_focus=False):
    DEFAULT_CSS = """
    ChatView { height: 1fr; padding: 1 2 0 2; background: $background; }
    ChatView > .notice { color: $warning; margin: 0 0 1 0; padding: 0 1; }
    ChatView > .empty { color: $text-muted; padding: 1 1; }
    ChatView > .earlier { color: $text-muted; text-align: center; margin: 0 0 1 0; }
    ChatView > .earlier:hover { color: $accent; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.earlier: list[MessageView] = []  # not mounted yet, oldest first
        self._loading_earlier = False

    async def show(self, views: Iterable[MessageView]) -> None:
        """Replace everything with ``views`` (a conversation's current branch)."""
        views = list(views)
        cut = max(0, len(views) - WINDOW)
        self.earlier, shown = views[:cut], views[cut:]
        with self.app.batch_update():
            await self.remove_children()
            if self.earlier:
                await self.mount(Static(self._earlier_text(), classes="earlier", markup=False))
            if shown:
                await self.mount_all(shown)
            else:
                await self.mount(Static(EMPTY_TEXT, classes="empty", markup=False))
        self.scroll_end(animate=False, immediate=True)
        self.anchor()

    def _earlier_text(self) -> str:
        n = len(self.earlier)
        return f"▲ {n} earlier message{'s' if n != 1 else ''} · scroll up or click to show"

    async def show_earlier(self, count: int = WINDOW) -> None:
        """Mount the ``count`` messages before the first one shown, keeping the view where it was."""
        if not self.earlier or self._loading_earlier:
            return
        self._loading_earlier = True
        try:
            batch, self.earlier = self.earlier[-count:], self.earlier[:-count]
            marker = self.query_children(".earlier").first(Static)
            anchor = self.messages()[0] if self.messages() else None
            await self.mount_all(batch, after=marker)
            if self.earlier:
                marker.update(self._earlier_text())
            else:
                await marker.remove()
            if anchor is not None:
                self.call_after_refresh(self.scroll_to_widget, anchor, top=True, animate=False)
        finally:
            self._loading_earlier = False

    async def reveal(self, message_id: int) -> MessageView | None:
        """The view of ``message_id``, mounting earlier messages down to it when needed."""
        found = self.find(message_id)
        if found is not None:
            return found
        for index, view in enumerate(self.earlier):
            if view.message_id == message_id:
                await self.show_earlier(len(self.earlier) - index)
                return view
        return None

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if new <= 0 < old and self.earlier:
            self.call_later(self.show_earlier)

    def on_click(self, event: events.Click) -> None:
        if isinstance(event.widget, Static) and event.widget.has_class("earlier"):
            self.call_later(self.show_earlier)

    async def add(self, view: MessageView) -> None:
        await self.remove_children(".empty")
        await self.mount(view)
        self.anchor()
        self.scroll_end(animate=False)

    async def notice(self, text: str, before: Widget | None = None) -> None:
        """A line from g3chat itself (not part of the conversation), e.g. about the context window."""
        await self.remove_children(".empty")
        note = Static(text, classes="notice", markup=False)
        if before is not None and before.parent is self:
            await self.mount(note, before=before)
        else:
            await self.mount(note)
        self.scroll_end(animate=False)

    def messages(self) -> list[MessageView]:
        """The mounted messages, oldest first."""
        return list(self.query_children(MessageView))

    def find(self, message_id: int) -> MessageView | None:
        for view in self.messages():
            if view.message_id == message_id:
                return view
        return None

    # ------------------------------------------------------------------------------ choosing one

    def selected(self) -> MessageView | None:
        """The saved message that has the focus, if one has."""
        focused = self.screen.focused
        return focused if isinstance(focused, MessageView) and focused.message_id is not None else None

    def last(self, role: str) -> MessageView | None:
        for view in reversed(self.messages()):
            if view.role == role and view.message_id is not None:
                return view
        return None

    def branch_target(self) -> MessageView | None:
        """The selected message when it has siblings, else the latest message that has."""
        selected = self.selected()
        if selected is not None and selected.branch is not None:
            return selected
        for view in reversed(self.messages()):
            if view.branch is not None and view.message_id is not None:
                return view
        return None

    def copy_message(self) -> None:
        """Copy the selected (or last) answer to the clipboard."""
        target = self.selected() or self.last("assistant")
        if target is None:
            self.notify("Nothing to copy yet.")
            return
        self.app.copy_to_clipboard(target.text)
        self.notify("Copied the message.")

    def copy_code(self) -> None:
        """Copy a code block of the selected (or last) answer: the only one, or the one picked."""
        from g3chat.tui.screens.code_picker_screen import CodePickerScreen, code_blocks

        target = self.selected() or self.last("assistant")
        blocks = code_blocks(target.text) if target is not None else []
        if not blocks:
            self.notify("No code block in that message.")
            return

        def copy(index: int | None) -> None:
            if index is not None:
                self.app.copy_to_clipboard(blocks[index][1])
                self.notify(f"Copied code block {index + 1}.")

        if len(blocks) == 1:
            copy(0)
        else:
            self.app.push_screen(CodePickerScreen(blocks), copy)

    def focus_last(self) -> None:
        views = self.messages()
        if views:
            views[-1].focus()

    async def step(self, step: int) -> bool:
        """Move the focus ``step`` messages on (mounting earlier ones at the top); False when that leaves
        the messages at the bottom (the message box takes the focus then)."""
        views = self.messages()
        focused = self.screen.focused
        if not views or not isinstance(focused, MessageView) or focused not in views:
            return True
        if focused is views[0] and step < 0 and self.earlier:
            await self.show_earlier()
            views = self.messages()
        index = views.index(focused) + step
        if index >= len(views):
            return False
        if index >= 0:
            views[index].focus()
            self.scroll_to_widget(views[index], animate=False)
        return True

    # -------------------------------------------------------------------------------- tool calls

    def tool_blocks(self) -> list[ToolCallBlock]:
        return list(self.query(ToolCallBlock))

    def show_call_waiting(self) -> None:
        """The running call waits for the person's approval."""
        running = [b for b in self.tool_blocks() if b.status == "running"]
        if running:
            running[-1].set_status("waiting")

    def show_call_result(self, call_id: str, status: str, result: str) -> None:
        for block in self.tool_blocks():
            if block.call_id == call_id:
                block.set_status(status, result)
