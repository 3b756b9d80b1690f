"""Running one tool function: its timeout, and every failure turned into a result for the model."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from g3chat.core.tools.model import ToolError
from g3chat.core.types import ToolStatus


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def _call(fn: Callable[[dict[str, Any]], Any], arguments: dict[str, Any]) -> tuple[ToolStatus, str]:
    try:
        return "ok", _text(fn(dict(arguments)))
    except ToolError as exc:
        return "error", str(exc)
    except Exception as exc:  # a broken user or MCP tool must not end the chat
        return "error", f"the tool failed: {type(exc).__name__}: {exc}"


def run_tool(
    fn: Callable[[dict[str, Any]], Any], arguments: dict[str, Any], timeout: float | None
) -> tuple[ToolStatus, str]:
    """("ok" | "error", text). With a timeout the function runs in a worker thread; when it overruns,
    the call is reported as timed out (a Python function cannot be killed: the thread is abandoned)."""
    if timeout is None:
        return _call(fn, arguments)
    box: list[tuple[ToolStatus, str]] = []
    worker = threading.Thread(
        target=lambda: box.append(_call(fn, arguments)), daemon=True, name="g3chat-tool"
    )
    worker.start()
    worker.join(timeout)
    if not box:
        return "error", f"timed out after {timeout:g} s"
    return box[0]
