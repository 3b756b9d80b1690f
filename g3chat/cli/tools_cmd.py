"""``g3chat tools list``, and the terminal side of tool calls in ``ask``: approval prompts and the trace."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any, TextIO

from g3chat.core.tools.approval import ApprovalRequest, Decision
from g3chat.core.tools.model import Tool, ToolRegistry
from g3chat.runtime import Runtime

_NOTES_HEADER = (
    "Not enforced by the grammar, only checked after parsing (an invalid call goes back to the model):"
)
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


def coverage_notes(tools: Iterable[Tool]) -> dict[str, str]:
    """Tool name → what of its arguments the call grammar leaves to the check after parsing, and why,
    for each tool whose grammar does not enforce its whole schema (``tools list``, ``ask --verbose``)."""
    from g3chat.core.tools.coverage import coverage

    found = {tool.name: coverage(tool.parameters) for tool in tools}
    return {name: "; ".join(c.after_parsing) for name, c in found.items() if c.grammar != "full"}


def list_tools(json_output: bool, mcp: bool) -> None:
    from g3chat.core.tools.coverage import coverage

    runtime = Runtime.from_env()
    with runtime.load_tools(mcp=mcp) as toolset:
        registry = toolset.registry
        for notice in registry.notices():
            sys.stderr.write(f"g3chat: {notice}\n")
        if json_output:
            for tool in registry:
                row = {**tool.to_json(), "arguments_check": coverage(tool.parameters).to_json()}
                sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
            return
        _table(registry)


def _table(registry: ToolRegistry) -> None:
    from g3chat.core.tools.coverage import coverage

    rows = [
        (
            t.name,
            t.source,
            "yes" if t.mutating else "no",
            coverage(t.parameters).label,
            t.description.splitlines()[0] if t.description else "",
        )
        for t in registry
    ]
    header = ("NAME", "SOURCE", "APPROVAL", "ARGUMENTS", "DESCRIPTION")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        sys.stdout.write("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4] + "\n")
    notes = coverage_notes(registry)
    if notes:
        sys.stdout.write(f"\n{_NOTES_HEADER}\n")
        for name, note in notes.items():
            sys.stdout.write(f"  {name}: {note}\n")
