"""Previews as plain data: half-block pixel cells for images, level strips for audio.

A terminal cell shows two pixels with the upper-half block ``▀``: its foreground colour is the upper pixel
and its background the lower one. :func:`half_block_cells` scales an image to fit ``columns`` × ``rows``
cells (aspect kept; terminal cells are about twice as tall as wide, which the two pixels per cell make
square) and returns rows of ``(upper_rgb, lower_rgb)`` pairs. A UI paints them; nothing here draws.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

RGB = tuple[int, int, int]
Cell = tuple[RGB, RGB]
BARS = " ▁▂▃▄▅▆▇█"


def fit(width: int, height: int, columns: int, rows: int) -> tuple[int, int]:
    """Pixel size (w, h) that fits ``columns`` × ``2·rows`` pixels with the aspect ratio kept."""
    if width <= 0 or height <= 0 or columns <= 0 or rows <= 0:
        return 0, 0
    scale = min(columns / width, (2 * rows) / height)
    w = max(1, min(columns, round(width * scale)))
    h = max(2, min(2 * rows, round(height * scale)))
    return w, h + (h % 2)


def half_block_cells(image: Any | Path | str, columns: int, rows: int) -> list[list[Cell]]:
    """Rows of (upper pixel, lower pixel) colour pairs for an image (a path or a Pillow image)."""
    from PIL import Image

    if isinstance(image, (str, Path)):
        with Image.open(image) as opened:
            source = opened.convert("RGB")
    else:
        source = image.convert("RGB")
    w, h = fit(source.width, source.height, columns, rows)
    if w == 0:
        return []
    data = source.resize((w, h), Image.Resampling.BOX).tobytes()

    def pixel(x: int, y: int) -> RGB:
        i = 3 * (y * w + x)
        return data[i], data[i + 1], data[i + 2]

    return [[(pixel(x, y), pixel(x, y + 1)) for x in range(w)] for y in range(0, h, 2)]


def level_bar(levels: list[float]) -> str:
    """A one-line strip of block characters for levels in 0..1 (a waveform or a level history)."""
    top = len(BARS) - 1
    return "".join(BARS[max(0, min(top, round(v * top)))] for v in levels)


def audio_strip(path: Path | str, columns: int) -> str:
    """The waveform strip of a stored WAV attachment."""
    from g3chat.core.media.audio import read_wav, waveform

    samples, _rate = read_wav(path)
    return level_bar(waveform(samples, columns))
