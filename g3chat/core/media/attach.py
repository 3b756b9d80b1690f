"""Attaching files, the same way everywhere: by kind, by ``/image PATH``-style commands, by a pasted path.

UI-agnostic: the TUI's input box and ``g3chat ask`` both end here. A path may be quoted, start with ``~``,
be a ``file://`` URI, or carry shell escapes (``My\\ Photo.png``), as terminals paste dropped files.
"""

from __future__ import annotations

import mimetypes
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse

from g3chat.core.errors import MediaError
from g3chat.core.media.store import MediaStore
from g3chat.core.types import AttachmentPart

AttachKind = Literal["image", "audio", "video"]
COMMANDS: dict[str, AttachKind] = {"/image": "image", "/audio": "audio", "/video": "video"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg"}


@dataclass(frozen=True)
class AttachRequest:
    kind: AttachKind | None  # None: decide from the file
    path: Path


def clean_path(text: str) -> Path:
    """A path as typed or pasted: quotes, ``file://`` URIs, shell escapes and ``~`` handled."""
    raw = text.strip()
    if raw.startswith("file://"):
        return Path(unquote(urlparse(raw).path))
    try:
        parts = shlex.split(raw)
    except ValueError:
        parts = [raw]
    return Path((parts[0] if len(parts) == 1 else raw).strip()).expanduser()


def parse_command(text: str) -> AttachRequest | None:
    """``/image PATH``, ``/audio PATH``, ``/video PATH`` (or ``/attach PATH``) → a request; else None."""
    head, _, rest = text.strip().partition(" ")
    if head == "/attach" and rest.strip():
        return AttachRequest(None, clean_path(rest))
    if head in COMMANDS:
        if not rest.strip():
            raise MediaError(f"{head} needs a file: {head} PATH")
        return AttachRequest(COMMANDS[head], clean_path(rest))
    return None


def kind_of(path: Path) -> AttachKind | None:
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in AUDIO_SUFFIXES:
        return "audio"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    mime = mimetypes.guess_type(path.name)[0] or ""
    major = mime.split("/")[0]
    kinds: dict[str, AttachKind] = {"image": "image", "audio": "audio", "video": "video"}
    return kinds.get(major)


def pasted_path(text: str) -> AttachRequest | None:
    """A paste that is exactly one existing media file (what dropping a file on a terminal types)."""
    if "\n" in text.strip() or not text.strip():
        return None
    path = clean_path(text)
    try:
        if not path.is_file():
            return None
    except (OSError, ValueError):  # a long line of text is "File name too long"; a NUL is a ValueError
        return None
    kind = kind_of(path)
    return AttachRequest(kind, path) if kind else None


def attach(
    store: MediaStore, request: AttachRequest, *, video_frames: int | None = None
) -> list[AttachmentPart]:
    """Prepare and store the file; a video gives one part per sampled frame. MediaError on failure."""
    kind = request.kind or kind_of(request.path)
    if kind is None:
        if request.path.is_dir():
            raise MediaError(f"{request.path}: is a directory, not a file to attach")
        raise MediaError(
            f"{request.path}: cannot tell what kind of file this is; use /image, /audio or /video"
        )
    if kind == "image":
        from g3chat.core.media.images import attach_image

        return [attach_image(store, request.path)]
    if kind == "audio":
        from g3chat.core.media.audio import attach_audio

        return [attach_audio(store, request.path)]
    from g3chat.core.media.video import MAX_FRAMES, attach_video

    return attach_video(store, request.path, max_frames=video_frames or MAX_FRAMES)


def describe(part: AttachmentPart) -> str:
    """A chip's text: ``cat.png 640×480``, ``note.wav 0:03``, ``clip.mp4 @ 0:02``, ``notes.md 1,234 chars``
    (``… (cut)`` when a text file was longer than the cap)."""
    if part.kind == "text_file":
        cut = " (cut)" if part.original_size is not None else ""
        return f"{part.label} {part.chars or 0:,} chars{cut}"
    if part.kind == "audio" and part.duration_s is not None:
        minutes, seconds = divmod(round(part.duration_s), 60)
        return f"{part.label} {minutes}:{seconds:02d}"
    if part.width and part.height and part.timestamp is None:
        return f"{part.label} {part.width}×{part.height}"
    return part.label
