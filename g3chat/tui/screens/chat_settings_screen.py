"""A conversation's own system prompt and sampling settings (blank fields use the config's)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static, TextArea

from g3chat.core.types import GenerationParams

# (name, type, lowest, highest)
FIELDS: tuple[tuple[str, type, float, float | None], ...] = (
    ("temperature", float, 0.0, None),
    ("top_k", int, 0, None),
    ("top_p", float, 0.0, 1.0),
    ("min_p", float, 0.0, 1.0),
    ("repeat_penalty", float, 0.0, None),
    ("seed", int, 0, None),
    ("max_tokens", int, 1, None),
)


@dataclass(frozen=True)
class ChatSettings:
    system_prompt: str
    params: dict[str, Any]


def parse_params(raw: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Typed overrides from the form's text fields, and a problem per bad field."""
    params: dict[str, Any] = {}
    problems: list[str] = []
    for name, kind, lo, hi in FIELDS:
        text = raw.get(name, "").strip()
        if not text:
            continue
        try:
            value = kind(text)
        except ValueError:
            problems.append(f"{name} must be {'an integer' if kind is int else 'a number'}")
            continue
        if value < lo or (hi is not None and value > hi):
            problems.append(
                f"{name} must be at least {lo}" + (f" and at most {hi}" if hi is not None else "")
            )
            continue
        params[name] = value
    return params, problems


class ChatSettingsScreen(ModalScreen[ChatSettings | None]):
    DEFAULT_CSS = """
    ChatSettingsScreen { align: center middle; }
    ChatSettingsScreen > Vertical {
        width: 90%; max-width: 100; height: auto; max-height: 95%;
        padding: 1 2; background: $panel; border: thick $primary;
    }
    ChatSettingsScreen TextArea { height: 6; }
    ChatSettingsScreen Grid { grid-size: 4; grid-columns: auto 1fr auto 1fr; grid-gutter: 0 1; height: auto; }
    ChatSettingsScreen Label { padding: 1 0; }
    ChatSettingsScreen .problems { color: $error; height: auto; }
    ChatSettingsScreen Horizontal { height: auto; align-horizontal: right; }
    ChatSettingsScreen Button { margin-left: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "save", "Save", priority=True),
    ]

    def __init__(self, system_prompt: str, overrides: dict[str, Any], defaults: GenerationParams) -> None:
        super().__init__()
        self.system_prompt = system_prompt
        self.overrides = overrides
        self.defaults = defaults

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("System prompt for this conversation", markup=False)
            yield TextArea(self.system_prompt, id="system", soft_wrap=True)
            with Grid():
                for name, _kind, _lo, _hi in FIELDS:
                    yield Label(name)
                    value = self.overrides.get(name)
                    default = getattr(self.defaults, name)
                    yield Input(
                        "" if value is None else str(value),
                        placeholder=f"default {default if default is not None else '–'}",
                        id=f"param-{name}",
                    )
            yield Static("", classes="problems", markup=False)
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button("Save", id="save", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.dismiss(None)

    def action_save(self) -> None:
        raw = {name: self.query_one(f"#param-{name}", Input).value for name, *_ in FIELDS}
        params, problems = parse_params(raw)
        if problems:
            self.query_one(".problems", Static).update("; ".join(problems))
            return
        self.dismiss(ChatSettings(self.query_one("#system", TextArea).text, params))

    def action_cancel(self) -> None:
        self.dismiss(None)
