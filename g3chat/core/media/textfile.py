"""Text files as attachments: stored like media, read into the prompt as a fenced block with the file name.

An ``@notes.md`` mention keeps the file's text, up to a cap, in the content-addressed media store (so the
conversation stays whole when the file changes or goes away) and references it from the message as an
:class:`~g3chat.core.types.AttachmentPart` of kind ``text_file``: a chip in the UI, like an image, but the
model reads it as text (people's text, so a file cannot forge control tokens) and remote engines send it as
text. A file longer than the cap keeps its first ``max_chars`` characters, and both the part (for the chip's
notice) and the prompt (for the model) say so.
"""

from __future__ import annotations

import codecs
import mimetypes
from pathlib import Path
from typing import Final

from g3chat.core.errors import MediaError
from g3chat.core.media.store import MediaStore
from g3chat.core.types import AttachmentPart

TEXT_KIND: Final = "text_file"
DEFAULT_MAX_CHARS = 12000  # about 3,000 tokens: a good part of the default 8,192-token window, not all
_SNIFF = 8192  # bytes looked at for a NUL (what marks a binary file)
_CACHE_LIMIT = 64


def is_text(part: AttachmentPart) -> bool:
    return part.kind == TEXT_KIND


def read_capped(path: Path, max_chars: int) -> tuple[str, bool]:
    """The file's first ``max_chars`` characters and whether it had more. MediaError when it is binary or
    not UTF-8 (what a model could not read as text anyway)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    chunks: list[str] = []
    kept = 0
    try:
        with path.open("rb") as handle:
            head = handle.read(_SNIFF)
            if b"\x00" in head:
                raise MediaError(f"{path.name}: a binary file, not text (attach images, audio and video)")
            data = head
            while data:
                text = decoder.decode(data)
                chunks.append(text)
                kept += len(text)
                if kept > max_chars:
                    break
                data = handle.read(max(4096, (max_chars - kept) * 4))
            else:
                chunks.append(decoder.decode(b"", final=True))
    except UnicodeDecodeError:
        raise MediaError(f"{path.name}: not UTF-8 text") from None
    except OSError as exc:
        raise MediaError(f"{path.name}: cannot read it: {exc.strerror or exc}") from None
    text = "".join(chunks)
    return (text[:max_chars], True) if len(text) > max_chars else (text, False)


def attach_text(store: MediaStore, path: Path, *, max_chars: int = DEFAULT_MAX_CHARS) -> AttachmentPart:
    """Store the file's text (cut at ``max_chars``) and return the part for the message."""
    text, cut = read_capped(path, max_chars)
    data = text.encode("utf-8")
    stored, sha = store.put(data, ".txt")
    mime = mimetypes.guess_type(path.name)[0] or "text/plain"
    original = path.stat().st_size if cut else None
    _cache_put(sha, text)
    return AttachmentPart(
        kind=TEXT_KIND,
        name=path.name,
        mime=mime,
        path=str(stored),
        sha256=sha,
        size=len(data),
        chars=len(text),
        original_size=original,
    )


def cut_notice(part: AttachmentPart) -> str | None:
    """``notes.log: cut to its first 12,000 characters (the file has 81,234 bytes)``; None when whole."""
    if part.original_size is None:
        return None
    kept = part.chars or 0
    return f"{part.name}: cut to its first {kept:,} characters (the file has {part.original_size:,} bytes)"


def stored_text(part: AttachmentPart) -> str | None:
    """The stored text of a text-file part (cached by sha256); None when the stored copy is gone."""
    cached = _CACHE.get(part.sha256)
    if cached is not None:
        return cached
    try:
        text = Path(part.path).read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return None
    _cache_put(part.sha256, text)
    return text


def block(part: AttachmentPart) -> str:
    """What the model reads for a text-file part: its name, then its text in a fence longer than any
    backtick run inside it (so the file cannot close the fence early)."""
    text = stored_text(part)
    if text is None:
        return f"[file {part.name}: its stored copy is missing]"
    fence = "```"
    while fence in text:
        fence += "`"
    language = Path(part.name).suffix.lstrip(".").lower()
    if not (language.isalnum() and len(language) <= 10):
        language = ""
    heading = f"{part.name}:"
    if part.original_size is not None:
        heading = (
            f"{part.name} (its first {part.chars or len(text):,} characters; the file has "
            f"{part.original_size:,} bytes):"
        )
    return f"{heading}\n{fence}{language}\n{text.rstrip(chr(10))}\n{fence}"


_CACHE: dict[str, str] = {}


def _cache_put(sha: str, text: str) -> None:
    if len(_CACHE) >= _CACHE_LIMIT:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[sha] = text
