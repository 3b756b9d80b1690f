"""Edit one of your earlier messages; saving re-runs the conversation from there on a new branch."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static, TextArea


class EditMessageScreen(ModalScreen[str | None]):
    DEFAULT_CSS = """
    EditMessageScreen { align: center middle; }
    EditMessageScreen > Vertical {
        width: 90%; max-width: 110; height: auto; max-height: 90%;
        padding: 1 2; background: $panel; border: thick $primary;
    }
    EditMessageScreen TextArea { height: auto; min-height: 5; max-height: 20; }
    EditMessageScreen .hint { color: $text-muted; }
    EditMessageScreen Horizontal { height: auto; align-horizontal: right; }
    EditMessageScreen Button { margin-left: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "save", "Send", priority=True),
    ]

    def __init__(self, text: str) -> None:
        super().__init__()
        self.original = text

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Edit your message: the old version and its answers stay as a branch.", markup=False)
            yield TextArea(self.original, id="text", soft_wrap=True)
            yield Static("Ctrl+S sends · Esc cancels", classes="hint", markup=False)
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button("Send", id="send", variant="primary")

    def on_mount(self) -> None:
        area = self.query_one(TextArea)
        area.focus()
        area.move_cursor(area.document.end)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "send":
            self.action_save()
        else:
            self.dismiss(None)

    def action_save(self) -> None:
        text = self.query_one(TextArea).text
        self.dismiss(text if text.strip() else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
