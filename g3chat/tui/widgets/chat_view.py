"""The conversation: a scrolling column of messages and notices that follows new text."""

from __future__ import annotations

from collections.abc import Iterable

from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from g3chat.tui.widgets.message_view import MessageView

EMPTY_TEXT = "Type a message below and press Enter. Ctrl+P lists every action."


class ChatView(VerticalScroll, can_focus=False):
    DEFAULT_CSS = """
    ChatView { height: 1fr; padding: 1 2 0 2; background: $background; }
    ChatView > .notice { color: $warning; margin: 0 0 1 0; padding: 0 1; }
    ChatView > .empty { color: $text-muted; padding: 1 1; }
    """

    async def show(self, views: Iterable[MessageView]) -> None:
        """Replace everything with ``views`` (a conversation's current branch)."""
        views = list(views)
        with self.app.batch_update():
            await self.remove_children()
            if views:
                await self.mount_all(views)
            else:
                await self.mount(Static(EMPTY_TEXT, classes="empty", markup=False))
        self.scroll_end(animate=False, immediate=True)
        self.anchor()

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
        return list(self.query_children(MessageView))

    def find(self, message_id: int) -> MessageView | None:
        for view in self.messages():
            if view.message_id == message_id:
                return view
        return None
