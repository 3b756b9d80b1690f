"""One tool call and its result, collapsible: a line with the tool, its arguments in short and how it went;
expanded, the full arguments and the full result."""

from __future__ import annotations

import json
from typing import Any

from textual.content import Content
from textual.widgets import Collapsible, Static

ARGS_WIDTH = 50  # characters of arguments on the collapsed line
STATUS_STYLES = {
    "ok": "$text-success",
    "error": "$text-error",
    "denied": "$text-warning",
    "running": "$text-muted",
    "waiting": "$text-warning",
}
UNREAD = "(unreadable call)"


def short_arguments(arguments: dict[str, Any], width: int = ARGS_WIDTH) -> str:
    """``name=value`` pairs on one line, values as JSON, cut to ``width`` characters."""
    text = " ".join(
        f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in arguments.items()
    ).replace("\n", "⏎")
    return text if len(text) <= width else text[: width - 1] + "…"


class ToolCallBlock(Collapsible):
    """A call of the conversation (``call_id`` ties it to its result); collapsed by default."""

    DEFAULT_CSS = """
    ToolCallBlock {
        background: $boost; border-top: none; padding: 0; margin: 0 0 1 0;
    }
    ToolCallBlock > Contents { padding: 0 1 0 3; }
    ToolCallBlock .label { color: $text-muted; text-style: bold; }
    ToolCallBlock .arguments { margin-bottom: 1; }
    """

    def __init__(
        self,
        call_id: str,
        name: str,
        arguments: dict[str, Any],
        *,
        result: str | None = None,
        status: str = "running",
    ) -> None:
        self.call_id = call_id
        self.tool = name or UNREAD
        self.arguments = arguments
        self.result = result
        self.status = status
        pretty = json.dumps(arguments, ensure_ascii=False, indent=2) if arguments else "(none)"
        self._result_view = Static(self._result_text(), classes="result", markup=False)
        super().__init__(
            Static("arguments", classes="label", markup=False),
            Static(pretty, classes="arguments", markup=False),
            Static("result", classes="label", markup=False),
            self._result_view,
            title=self._title_text(),  # type: ignore[arg-type]  # typed str; a Content is shown as is (no markup)
            collapsed=True,
        )
        self._set_status_class()

    def _title_text(self) -> Content:
        args = short_arguments(self.arguments)
        return Content.assemble(
            "⚙ ",
            (self.tool, "bold"),
            " · ",
            (self.status, STATUS_STYLES.get(self.status, "")),
            *((" · ", (args, "$text-muted")) if args else ()),
        )

    def _result_text(self) -> str:
        if self.result is None:
            return "waiting for your approval…" if self.status == "waiting" else "running…"
        return self.result or "(empty)"

    def _set_status_class(self) -> None:
        for name in STATUS_STYLES:
            self.set_class(self.status == name, f"-{name}")

    def set_status(self, status: str, result: str | None = None) -> None:
        """Show the call's state (``running``, ``waiting``) or its result (``ok``, ``error``, ``denied``)."""
        self.status = status
        if result is not None:
            self.result = result
        self.title = self._title_text()  # type: ignore[assignment]  # as in __init__: typed str, takes Content
        self._set_status_class()
        self._result_view.update(self._result_text())
