"""Ask before a tool call that changes things: the tool, and exactly what it would do (the command, or the
unified diff of a file), with approve once / always for this chat / deny.

Dismissed with ``once``, ``always``, ``deny`` (the model is told, and goes on) or ``stop`` (Esc: deny, and
stop the answer).
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from g3chat.core.tools.approval import ApprovalRequest
from g3chat.tui.keys import APPROVAL_KEYS

HINT = "y approve once · a always for this chat · n deny (the model is told) · Esc deny and stop the answer"
SOURCES = {"user": "a tool of yours", "mcp": "an MCP server's tool"}


def is_diff(text: str) -> bool:
    return text.startswith(("--- ", "diff ", "@@ ")) or "\n@@ " in text


def preview_content(text: str) -> Content:
    """The preview, a unified diff's added and removed lines in the theme's colours."""
    if not is_diff(text):
        return Content(text)
    pieces: list[str | tuple[str, str]] = []
    for line in text.splitlines(keepends=True):
        if line.startswith(("+++", "---")):
            pieces.append((line, "bold"))
        elif line.startswith("+"):
            pieces.append((line, "$text-success"))
        elif line.startswith("-"):
            pieces.append((line, "$text-error"))
        elif line.startswith("@@"):
            pieces.append((line, "$text-accent"))
        else:
            pieces.append(line)
    return Content.assemble(*pieces)


class ApprovalScreen(ModalScreen[str]):
    DEFAULT_CSS = """
    ApprovalScreen { align: center middle; }
    ApprovalScreen > Vertical {
        width: 90%; max-width: 110; height: auto; max-height: 90%;
        padding: 1 2; background: $panel; border: thick $warning;
    }
    ApprovalScreen .title { text-style: bold; }
    ApprovalScreen .source { color: $text-muted; }
    ApprovalScreen VerticalScroll {
        height: auto; max-height: 20; margin: 1 0; padding: 0 1; background: $surface;
    }
    ApprovalScreen .hint { color: $text-muted; margin-bottom: 1; }
    ApprovalScreen Horizontal { height: auto; align-horizontal: right; }
    ApprovalScreen Button { margin-left: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(key, f"answer('{answer}')", title) for key, answer, title in APPROVAL_KEYS
    ]

    def __init__(self, request: ApprovalRequest, chat: str | None = None) -> None:
        super().__init__()
        self.request = request
        self.chat = chat  # the conversation asking, when it is not the one on screen

    def compose(self) -> ComposeResult:
        request = self.request
        with Vertical():
            asking = (" in “", (self.chat, "bold"), "”") if self.chat else ()
            yield Static(
                Content.assemble("Allow ", (request.tool, "bold $text-warning"), *asking, " to run?"),
                classes="title",
            )
            source = SOURCES.get(request.source, "a built-in tool")
            where = f" ({request.origin})" if request.origin else ""
            yield Static(f"It changes things: {source}{where}. It would do exactly this:", classes="source")
            with VerticalScroll():
                yield Static(preview_content(request.preview or "(no preview)"), classes="preview")
            yield Static(HINT, classes="hint", markup=False)
            with Horizontal():
                yield Button("Deny (n)", id="deny", variant="error")
                yield Button("Always for this chat (a)", id="always")
                yield Button("Approve once (y)", id="once", variant="success")

    def on_mount(self) -> None:
        self.query_one("#deny", Button).focus()  # Enter alone never approves

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id or "deny")

    def action_answer(self, answer: str) -> None:
        self.dismiss(answer)
