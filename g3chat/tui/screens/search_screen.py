"""Search every conversation (SQLite FTS5) and jump to a hit."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from g3chat.core.search import MARK_END, MARK_START, SearchHit
from g3chat.core.store import Store

LIMIT = 50


def hit_label(hit: SearchHit) -> Text:
    text = Text()
    text.append(hit.conversation_title or "New chat", style="bold")
    text.append(f"  {'you' if hit.role == 'user' else hit.role}: ", style="dim")
    snippet = " ".join(hit.snippet.split())
    position = 0
    while position < len(snippet):
        start = snippet.find(MARK_START, position)
        if start < 0:
            text.append(snippet[position:])
            break
        text.append(snippet[position:start])
        end = snippet.find(MARK_END, start)
        end = len(snippet) if end < 0 else end
        text.append(snippet[start + 1 : end], style="reverse")
        position = end + 1
    return text


class SearchScreen(ModalScreen[SearchHit | None]):
    DEFAULT_CSS = """
    SearchScreen { align: center top; }
    SearchScreen > Vertical {
        width: 90%; max-width: 120; height: auto; max-height: 80%;
        margin-top: 2; padding: 1 2; background: $panel; border: thick $primary;
    }
    SearchScreen OptionList { height: auto; max-height: 24; border: none; }
    SearchScreen .status { color: $text-muted; height: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Close"),
        Binding("down", "move(1)", show=False),
        Binding("up", "move(-1)", show=False),
    ]

    def __init__(self, store: Store, query: str = "") -> None:
        super().__init__()
        self.store = store
        self.initial = query
        self.hits: list[SearchHit] = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Input(self.initial, placeholder="Search all conversations", id="query")
            yield Static("", classes="status", markup=False)
            yield OptionList(id="hits")

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        if self.initial:
            self.run_search(self.initial)

    def on_input_changed(self, event: Input.Changed) -> None:
        self.run_search(event.value)

    def run_search(self, query: str) -> None:
        self.hits = self.store.search(query, limit=LIMIT)
        hits = self.query_one(OptionList)
        hits.clear_options()
        hits.add_options(Option(hit_label(h), id=str(i)) for i, h in enumerate(self.hits))
        if self.hits:
            hits.highlighted = 0
        count = len(self.hits)
        status = "" if not query.strip() else f"{count}{'+' if count == LIMIT else ''} found"
        self.query_one(".status", Static).update(status)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        highlighted = self.query_one(OptionList).highlighted
        if self.hits:
            self.dismiss(self.hits[highlighted or 0])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.hits[event.option_index])

    def action_move(self, step: int) -> None:
        hits = self.query_one(OptionList)
        if self.hits:
            current = hits.highlighted or 0
            hits.highlighted = max(0, min(len(self.hits) - 1, current + step))

    def action_cancel(self) -> None:
        self.dismiss(None)
