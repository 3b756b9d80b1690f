"""Approval of tool calls, headless: who may run what, and how a person is asked.

Read-only tools run at once. A mutating tool runs only when one of these holds: ``--yes`` (approve
everything), its name is in the allow list (``--allow NAME,...``), the person chose "always" for it
earlier in this chat, or the :class:`Approver` says yes now. Without an approver (``ask`` when not on a
terminal) a mutating call that nothing above allows is refused, and the refusal goes back to the model as
the call's result.

An approver is any callable ``(ApprovalRequest) -> Decision``. The CLI's asks on the terminal. The TUI's
will push a modal from its worker thread and block until it is answered, e.g.
``app.call_from_thread(app.push_screen_wait, ApprovalModal(request))``: the modal shows ``request.tool``
and ``request.preview`` (the exact command or unified diff, monospace) with three buttons that return
:attr:`Decision.ONCE`, :attr:`Decision.ALWAYS` and :attr:`Decision.DENY` (Esc = deny). Keep one
:class:`ApprovalPolicy` per chat so "always" lasts for the chat and no longer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Decision(str, Enum):
    ONCE = "once"  # run this call
    ALWAYS = "always"  # run this call and every later call of the same tool in this chat
    DENY = "deny"  # do not run it; the model is told


@dataclass(frozen=True)
class ApprovalRequest:
    """One mutating call waiting for a person: ``preview`` is exactly what would happen."""

    tool: str
    arguments: dict[str, Any]
    preview: str
    source: str = "builtin"  # builtin, user or mcp
    origin: str = ""


Approver = Callable[[ApprovalRequest], "Decision | str"]  # a Decision or its value ("once", ...)


@dataclass(frozen=True)
class Verdict:
    approved: bool
    how: str  # read-only, yes, allowed, always, once, denied, no-approver

    @property
    def reason(self) -> str:
        if self.how == "denied":
            return "the user did not allow this call"
        if self.how == "no-approver":
            return "not run: this tool changes things and needs approval, which nobody could give here"
        return ""


@dataclass
class ApprovalPolicy:
    approver: Approver | None = None
    allow: frozenset[str] = frozenset()
    yes: bool = False
    always: set[str] = field(default_factory=set)

    @classmethod
    def create(
        cls, approver: Approver | None = None, allow: Iterable[str] = (), yes: bool = False
    ) -> ApprovalPolicy:
        return cls(approver, frozenset(allow), yes)

    def check(self, request: ApprovalRequest, *, mutating: bool) -> Verdict:
        if not mutating:
            return Verdict(True, "read-only")
        if self.yes:
            return Verdict(True, "yes")
        if request.tool in self.allow:
            return Verdict(True, "allowed")
        if request.tool in self.always:
            return Verdict(True, "always")
        if self.approver is None:
            return Verdict(False, "no-approver")
        decision = Decision(self.approver(request))
        if decision is Decision.ALWAYS:
            self.always.add(request.tool)
            return Verdict(True, "always")
        if decision is Decision.ONCE:
            return Verdict(True, "once")
        return Verdict(False, "denied")
