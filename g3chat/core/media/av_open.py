"""Opening a file with PyAV (FFmpeg) for audio and video, with one-line errors naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from g3chat.core.errors import MediaError
from g3chat.core.media.images import check_file


def av_reason(exc: Exception) -> str:
    """FFmpeg's reason without the errno noise: ``Invalid data found when processing input``."""
    return str(getattr(exc, "strerror", None) or exc).strip().rstrip(".")


def open_container(path: Path, what: str) -> Any:
    """``av.open(path)`` for an existing regular file, else a one-line MediaError naming the file."""
    import av

    check_file(path, what)
    try:
        return av.open(str(path))
    except av.FFmpegError as exc:
        raise MediaError(f"{path}: not {what} g3chat can read ({av_reason(exc)})") from None
