"""Choose which code block of an answer to copy."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option


def code_blocks(markdown: str) -> list[tuple[str, str]]:
    """(language, code) of every fenced or indented code block, in order (unclosed fences included)."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").parse(markdown)
    return [(t.info.strip(), t.content) for t in tokens if t.type in ("fence", "code_block")]


def block_label(index: int, language: str, code: str) -> str:
    first = code.strip().splitlines()[0][:60] if code.strip() else ""
    return f"{index + 1}. {language or 'text'} · {first}"


class CodePickerScreen(ModalScreen[int | None]):
    DEFAULT_CSS = """
    CodePickerScreen { align: center middle; }
    CodePickerScreen > Vertical {
        width: 80%; max-width: 100; height: auto; padding: 1 2; background: $panel; border: thick $primary;
    }
    CodePickerScreen OptionList { height: auto; max-height: 20; border: none; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, blocks: list[tuple[str, str]]) -> None:
        super().__init__()
        self.blocks = blocks

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Copy which code block?", markup=False)
            yield OptionList(
                *(Option(block_label(i, lang, code)) for i, (lang, code) in enumerate(self.blocks))
            )

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option_index)

    def action_cancel(self) -> None:
        self.dismiss(None)
