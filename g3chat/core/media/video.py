"""Video with PyAV: sample frames (one per second by default, capped) and attach them as timed images.

A video is not sent to the model as a video: its sampled frames are, each an image attachment that
remembers the video's name and the frame's time, rendered into the prompt as ``clip.mp4 @ 0:03`` before
the image. A long video is sampled evenly so that at most ``max_frames`` frames are taken.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from g3chat.core.errors import MediaError
from g3chat.core.media.av_open import open_container
from g3chat.core.media.images import MAX_SIDE, PreparedImage, image_part
from g3chat.core.media.store import MediaStore
from g3chat.core.types import AttachmentPart

FPS = 1.0
MAX_FRAMES = 8


@dataclass(frozen=True)
class Frame:
    timestamp: float
    image: Any  # an RGB Pillow image


def _times(duration: float | None, fps: float, max_frames: int) -> list[float]:
    if not duration or duration <= 0:
        return [0.0]
    step = max(1.0 / fps, duration / max_frames)
    times: list[float] = []
    t = 0.0
    while t < duration - 1e-6 and len(times) < max_frames:
        times.append(round(t, 3))
        t += step
    return times or [0.0]


def sample_frames(path: Path | str, *, fps: float = FPS, max_frames: int = MAX_FRAMES) -> list[Frame]:
    """Frames at 0 s, 1/fps s, … (evenly spread when that would exceed ``max_frames``)."""
    import av

    path = Path(path).expanduser()
    container = open_container(path, "a video")
    frames: list[Frame] = []
    try:
        with container:
            if not container.streams.video:
                raise MediaError(f"{path}: has no video stream")
            stream = container.streams.video[0]
            duration = None
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / 1_000_000
            targets = _times(duration, fps, max_frames)
            index = 0
            last: Any = None
            for frame in container.decode(stream):
                t = float(frame.time) if frame.time is not None else 0.0
                last = frame
                while index < len(targets) and t + 1e-3 >= targets[index]:
                    frames.append(Frame(targets[index], frame.to_image()))
                    index += 1
                if index >= len(targets):
                    break
            if not frames and last is not None:
                frames.append(Frame(0.0, last.to_image()))
    except av.FFmpegError as exc:
        raise MediaError(f"{path}: corrupt video ({exc})") from None
    if not frames:
        raise MediaError(f"{path}: contains no video frames")
    return frames


def _prepared(image: Any, max_side: int) -> PreparedImage:
    from PIL import Image

    rgb = image.convert("RGB")
    if max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    rgb.save(out, format="JPEG", quality=90)
    return PreparedImage(out.getvalue(), "image/jpeg", ".jpg", rgb.width, rgb.height, "video")


def attach_video(
    store: MediaStore,
    path: Path | str,
    *,
    fps: float = FPS,
    max_frames: int = MAX_FRAMES,
    max_side: int = MAX_SIDE,
) -> list[AttachmentPart]:
    """One image part per sampled frame, each naming the video and its time."""
    path = Path(path).expanduser()
    return [
        image_part(
            store,
            _prepared(frame.image, max_side),
            f"{path.stem}-{frame.timestamp:07.2f}s.jpg",
            source=path.name,
            timestamp=frame.timestamp,
        )
        for frame in sample_frames(path, fps=fps, max_frames=max_frames)
    ]
