"""Choose a role for a new conversation (``g3chat roles list`` shows the same ones)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from g3chat.core.roles import LoadedRole


def role_label(role: LoadedRole) -> str:
    mine = " (yours)" if not role.shipped else ""
    return f"{role.name}{mine} · {role.role.description}" if role.role.description else f"{role.name}{mine}"


class RolePickerScreen(ModalScreen[str | None]):
    """Dismissed with the chosen role's name, or None (Esc)."""

    DEFAULT_CSS = """
    RolePickerScreen { align: center middle; }
    RolePickerScreen > Vertical {
        width: 80%; max-width: 100; height: auto; padding: 1 2; background: $panel; border: thick $primary;
    }
    RolePickerScreen OptionList { height: auto; max-height: 20; border: none; }
    RolePickerScreen .hint { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, roles: Mapping[str, LoadedRole], folder: str) -> None:
        super().__init__()
        self.roles = dict(roles)
        self.folder = folder

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("New chat with which role?", markup=False)
            yield OptionList(*(Option(role_label(role), id=name) for name, role in self.roles.items()))
            yield Static(f"Your own roles: TOML files in {self.folder}", classes="hint", markup=False)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
