"""``g3chat tools list``, and the terminal side of tool calls in ``ask``: approval prompts and the trace."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from g3chat.core.tools.approval import ApprovalRequest, Decision
from g3chat.core.tools.model import ToolRegistry
from g3chat.runtime import Runtime

_ANSWERS = {"y": Decision.ONCE, "yes": Decision.ONCE, "a": Decision.ALWAYS, "always": Decision.ALWAYS}


class TerminalApprover:
    """Asks on the terminal: shows the exact command or diff, then y (once) / a (always) / N (deny)."""

    def __init__(self, stdin: TextIO | None = None, stderr: TextIO | None = None) -> None:
        self.stdin = stdin or sys.stdin
        self.stderr = stderr or sys.stderr

    def __call__(self, request: ApprovalRequest) -> Decision:
        where = f" ({request.origin})" if request.origin else ""
        self.stderr.write(f"\n{request.tool}{where} wants to make a change:\n")
        self.stderr.write(request.preview.rstrip("\n") + "\n")
        self.stderr.write("Allow it? [y] once, [a] always in this chat, [N] no: ")
        self.stderr.flush()
        line = self.stdin.readline()
        decision = _ANSWERS.get(line.strip().lower(), Decision.DENY)
        if not line:
            self.stderr.write("\n")
        return decision


def is_interactive(stdin: TextIO | None = None, stderr: TextIO | None = None) -> bool:
    streams = (stdin or sys.stdin, stderr or sys.stderr)
    return all(s is not None and s.isatty() for s in streams)


def trace_line(name: str, arguments: dict[str, Any], status: str, content: str, approval: str) -> str:
    args = json.dumps(arguments, ensure_ascii=False)
    if len(args) > 120:
        args = args[:117] + "..."
    first = content.strip().splitlines()[0] if content.strip() else ""
    detail = f"{len(content)} chars" if status == "ok" else (first[:100] or status)
    note = f", {approval}" if approval not in ("read-only", "invalid") else ""
    return f"[tool] {name} {args} -> {status}{note}: {detail}\n"


def list_tools(json_output: bool, mcp: bool) -> None:
    runtime = Runtime.from_env()
    with runtime.load_tools(mcp=mcp) as toolset:
        registry = toolset.registry
        for notice in registry.notices():
            sys.stderr.write(f"g3chat: {notice}\n")
        if json_output:
            for tool in registry:
                sys.stdout.write(json.dumps(tool.to_json(), ensure_ascii=False) + "\n")
            return
        _table(registry)


def _table(registry: ToolRegistry) -> None:
    rows = [
        (
            t.name,
            t.source,
            "yes" if t.mutating else "no",
            t.description.splitlines()[0] if t.description else "",
        )
        for t in registry
    ]
    header = ("NAME", "SOURCE", "APPROVAL", "DESCRIPTION")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        sys.stdout.write("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths)) + "  " + row[3] + "\n")
