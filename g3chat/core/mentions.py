"""``@path`` mentions: a file named in a message is attached to it (``ask`` and the chat UI both end here).

A mention is ``@`` at the start of the text or after a space or an opening bracket or quote, then a path:
``@notes.md``, ``@src/app.py``, ``@~/todo.txt``, ``@"my file.txt"`` (or ``@my\\ file.txt``). Punctuation
that ends a sentence is not part of it (``see @notes.md.``). Only an existing file counts: ``@someone``,
``@decorator``, ``me@example.com`` and a folder stay plain text. A file must lie inside the folders the
file tools may use (the working folder plus ``tools.roots``, :class:`~g3chat.core.tools.confine.Roots`):
one outside is refused, with one line, before anything is attached. The mention stays in the message's
text; images, audio and video are attached by type (:mod:`g3chat.core.media.attach`), anything else as a
text file (:mod:`g3chat.core.media.textfile`). (Here, not in media: media and tools know nothing of each
other.)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from g3chat.core.errors import MediaError
from g3chat.core.media.attach import AttachRequest, attach, kind_of
from g3chat.core.media.store import MediaStore
from g3chat.core.media.textfile import DEFAULT_MAX_CHARS, attach_text, cut_notice
from g3chat.core.tools.confine import Roots
from g3chat.core.tools.model import ToolError
from g3chat.core.types import AttachmentPart

_MENTION = re.compile(r"""(?<![^\s(\[{<'"])@(?:"([^"\n]+)"|'([^'\n]+)'|((?:\\ |[^\s@])+))""")
_TYPING = re.compile(r"""(?<![^\s(\[{<'"])@(?:"([^"\n]*)|((?:\\ |[^\s@"])*))$""")
_TRAILING = ".,;:!?)]}>'\""
MAX_COMPLETIONS = 50


class MentionRefused(MediaError):
    """``@path`` names a file outside the allowed folders: nothing is attached. Exit code 2."""


@dataclass(frozen=True)
class Mention:
    start: int  # the span of ``@path`` in the text
    end: int
    typed: str  # the path as typed (quotes and escapes removed)
    path: Path  # where it leads, resolved


@dataclass
class Attached:
    """What the mentions in one message attached, and the notices to show (a text file was cut)."""

    parts: list[AttachmentPart] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    mentions: list[Mention] = field(default_factory=list)


def roots_for(extra: str = "", cwd: Path | None = None) -> Roots:
    """The working folder plus ``tools.roots`` (separated by the path separator), as the file tools use."""
    paths = [cwd or Path.cwd(), *(Path(p).expanduser() for p in extra.split(os.pathsep) if p.strip())]
    return Roots(paths)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long, a NUL
        return False


def _candidates(typed: str, quoted: bool) -> Iterable[str]:
    """The token, then (unquoted) the token without each trailing punctuation character in turn."""
    yield typed
    while not quoted and typed and typed[-1] in _TRAILING:
        typed = typed[:-1]
        yield typed


def find_mentions(text: str, roots: Roots) -> list[Mention]:
    """Every ``@path`` in ``text`` that leads to an existing file (a folder stays plain text, as anything
    else does); MentionRefused (naming the first) when one lies outside ``roots``."""
    found: list[Mention] = []
    for match in _MENTION.finditer(text):
        quoted = match.group(3) is None
        raw = match.group(1) or match.group(2) or match.group(3).replace("\\ ", " ")
        for typed in _candidates(raw, quoted):
            candidate = Path(typed).expanduser()
            if not candidate.is_absolute():
                candidate = roots.base / candidate
            if not typed or not _is_file(candidate):
                continue
            try:
                real = roots.resolve(str(candidate))
            except ToolError:
                allowed = ", ".join(str(r) for r in roots.roots)
                raise MentionRefused(
                    f"@{typed}: outside the folders g3chat may read ({allowed}; add more with tools.roots); "
                    "nothing was attached"
                ) from None
            end = match.end() - (len(raw) - len(typed)) if not quoted else match.end()
            found.append(Mention(match.start(), end, typed, real))
            break
    return found


def attach_mentions(
    store: MediaStore,
    text: str,
    roots: Roots,
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
    video_frames: int | None = None,
) -> Attached:
    """Attach every file ``text`` mentions (each once, in order). Every mention is checked before any
    file is attached, so a refusal attaches nothing."""
    mentions = find_mentions(text, roots)
    result = Attached(mentions=mentions)
    for path in dict.fromkeys(m.path for m in mentions):
        kind = kind_of(path)
        if kind is not None:
            result.parts.extend(attach(store, AttachRequest(kind, path), video_frames=video_frames))
            continue
        part = attach_text(store, path, max_chars=max_chars)
        result.parts.append(part)
        notice = cut_notice(part)
        if notice:
            result.notices.append(notice)
    return result


def complete(partial: str, roots: Roots) -> list[str]:
    """Paths that ``partial`` (what follows ``@``) can grow into, inside ``roots``: folders end in ``/``.
    Hidden entries only when the typed name starts with a dot."""
    head, _, prefix = partial.rpartition("/")
    folder_text = f"{head}/" if head or partial.startswith("/") else ""
    folder = Path(folder_text or ".").expanduser()
    if not folder.is_absolute():
        folder = roots.base / folder
    try:
        real = folder.resolve()
        if not roots.contains(real) or not real.is_dir():
            return []
        entries = sorted(real.iterdir(), key=lambda p: p.name.lower())
    except OSError:
        return []
    out: list[str] = []
    for entry in entries:
        name = entry.name
        if not name.startswith(prefix) or (name.startswith(".") and not prefix.startswith(".")):
            continue
        try:
            suffix = "/" if entry.is_dir() else ""
        except OSError:
            continue
        out.append(f"{folder_text}{name}{suffix}")
        if len(out) >= MAX_COMPLETIONS:
            break
    return out


def suggestion(before: str, roots: Roots) -> str:
    """What to add after the cursor when the text before it ends in a mention being typed (``@no`` →
    ``tes.md``): the part every completion shares, else the rest of the first. Names with spaces are
    escaped (``my\\ file.txt``) unless the mention is quoted (``@"my fi`` → ``le.txt"``)."""
    match = _TYPING.search(before)
    if match is None:
        return ""
    quoted = match.group(1) is not None
    partial = match.group(1) if quoted else match.group(2).replace("\\ ", " ")
    options = complete(partial, roots)
    if not options:
        return ""
    common = options[0]
    for option in options[1:]:
        while not option.startswith(common):
            common = common[:-1]
    target = common if len(common) > len(partial) else options[0]
    rest = target[len(partial) :]
    if quoted:
        return rest + '"' if len(options) == 1 and not target.endswith("/") else rest
    return rest.replace(" ", "\\ ")
