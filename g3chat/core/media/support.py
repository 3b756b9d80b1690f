"""Is the loaded model able to take these attachments? One honest message when it is not."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from g3chat.core.errors import MediaUnsupportedError
from g3chat.core.types import AttachmentPart, Message


def problems(engine: Any, parts: Sequence[AttachmentPart]) -> list[tuple[AttachmentPart, Any]]:
    """(part, MediaProblem) for each attachment the engine cannot take."""
    check = getattr(engine, "media_problem", None)
    out = []
    for part in parts:
        if part.kind == "text_file":  # read as text: every model takes it
            continue
        problem = check(part) if check is not None else None
        if problem is not None:
            out.append((part, problem))
    return out


def explain(found: list[tuple[AttachmentPart, Any]]) -> str:
    """``this model has no vision projector: cat.png is kept in the conversation but was not sent (…)``."""
    by_reason: dict[tuple[str, str], list[str]] = {}
    for part, problem in found:
        names = by_reason.setdefault((problem.reason, problem.fix), [])
        name = part.source or part.label
        if name not in names:
            names.append(name)
    lines = []
    for (reason, fix), names in by_reason.items():
        verb = "is" if len(names) == 1 else "are"
        line = f"{reason}: {', '.join(names)} {verb} kept in the conversation but not sent"
        lines.append(f"{line} ({fix})" if fix else line)
    return "; ".join(lines)


def check_sendable(engine: Any, message: Message) -> None:
    """Raise MediaUnsupportedError (exit code 2) when the engine cannot take the message's attachments."""
    found = problems(engine, message.attachments)
    if found:
        raise MediaUnsupportedError(explain(found))


def token_cost(engine: Any, history: Sequence[Message], message: Message) -> int:
    """How many prompt tokens ``message``'s attachments add (what a video costs, before sending)."""
    without = Message(
        message.role,
        tuple(p for p in message.parts if not isinstance(p, AttachmentPart) or p.kind == "text_file"),
    )
    return engine.count_tokens([*history, message]) - engine.count_tokens([*history, without])
