"""The sidebar: saved conversations, most recent first. Selecting one opens it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual.widgets import OptionList
from textual.widgets.option_list import Option

from g3chat.core.store import Conversation

UNTITLED = "New chat"


class ConversationList(OptionList):
    DEFAULT_CSS = """
    ConversationList {
        width: 32; height: 1fr; border: none; border-right: vkey $panel; background: $surface;
    }
    ConversationList.-hidden { display: none; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conversation_ids: list[int] = []

    def set_conversations(self, conversations: Sequence[Conversation], current: int | None) -> None:
        self.clear_options()
        self.conversation_ids = [c.id for c in conversations]
        self.add_options(Option(c.title or UNTITLED, id=str(c.id)) for c in conversations)
        self.mark(current)

    def mark(self, current: int | None) -> None:
        """Highlight the open conversation."""
        if current in self.conversation_ids:
            self.highlighted = self.conversation_ids.index(current)
        else:
            self.highlighted = None
