"""``g3chat ask --tools``: the tool loop behind ask, with approval on the terminal and a trace on stderr.

Mutating tools run with ``--yes``, with ``--allow NAME,...``, or after a yes on the terminal; when stdin
or stderr is not a terminal there is nobody to ask, so anything else is refused (and the model is told).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from g3chat.cli.ask_options import AskOptions
from g3chat.cli.output import AnswerWriter, choose_writer
from g3chat.cli.tools_cmd import TerminalApprover, coverage_notes, is_interactive, trace_line
from g3chat.core.answer import ToolPlan
from g3chat.core.errors import InputError
from g3chat.core.tools.approval import ApprovalPolicy
from g3chat.core.tools.loop import ToolCallFinished, ToolCallStarted, check_tool_choice
from g3chat.core.tools.setup import ToolSet

if TYPE_CHECKING:
    from g3chat.runtime import Runtime


def _names(text: str | None) -> list[str]:
    return [n for n in (p.strip() for p in (text or "").split(",")) if n]


def open_tools(runtime: Runtime, opts: AskOptions) -> ToolSet:
    """The tool set, with ``--tools``, ``--allow`` and ``--tool-choice`` checked before the model loads."""
    toolset = runtime.load_tools()
    try:
        registry = toolset.registry
        for notice in registry.notices():
            sys.stderr.write(f"g3chat: {notice}\n")
        selected = [t.name for t in registry.select(opts.tools or "")]
        if not selected:
            raise InputError("--tools names no tools (use all or NAME,NAME)")
        unknown = [n for n in _names(opts.allow) if n not in registry]
        if unknown:
            raise InputError(f"--allow: unknown tool(s): {', '.join(unknown)}")
        check_tool_choice(opts.tool_choice, selected)
        if opts.verbose:
            for name, note in coverage_notes(registry.select(selected)).items():
                sys.stderr.write(
                    f"g3chat: {name}: not enforced by the grammar, only checked after parsing: {note}\n"
                )
    except BaseException:
        toolset.close()
        raise
    return toolset


def tool_plan(runtime: Runtime, toolset: ToolSet, opts: AskOptions) -> ToolPlan:
    """How ask's answer may call tools: approval on the terminal when there is one, else by the options."""
    approver = TerminalApprover() if is_interactive() else None
    settings = runtime.settings.tools
    return ToolPlan(
        toolset.registry.select(opts.tools or ""),
        ApprovalPolicy.create(approver, allow=_names(opts.allow), yes=opts.yes),
        tool_choice=opts.tool_choice,
        max_steps=opts.max_steps or settings.max_steps,
        output_limit=settings.output_limit,
    )


class ToolTrace:
    """Shows each call of ask's tool loop: the answer so far is finished, then a trace line on stderr."""

    def __init__(self, runtime: Runtime, opts: AskOptions) -> None:
        self.opts = opts
        self.runtime = runtime

    def show(self, event: Any, writer: AnswerWriter | None) -> AnswerWriter | None:
        """Handle a tool event; returns the writer to use for the text that follows."""
        if isinstance(event, ToolCallStarted) and writer is not None:
            writer.finish()  # the answer so far is complete on screen before any prompt or trace
            return choose_writer(plain=self.opts.plain, markdown_enabled=self.runtime.settings.ui.markdown)
        if isinstance(event, ToolCallFinished) and not self.opts.json_output:
            result = event.result
            sys.stderr.write(
                trace_line(
                    event.call.name, event.call.arguments, result.status, result.content, event.approval
                )
            )
            if event.approval == "no-approver":
                sys.stderr.write(
                    f"g3chat: {event.call.name} changes things and was not run: use --yes or --allow "
                    f"{event.call.name} when not on a terminal\n"
                )
            sys.stderr.flush()
        return writer
