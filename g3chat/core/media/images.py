"""Images with Pillow: open safely, orient, convert to RGB, cap the size, re-encode, store.

Accepted: PNG, JPEG, WebP, GIF (first frame), BMP, TIFF. EXIF orientation is applied; CMYK, palette,
greyscale and 16-bit images become RGB; transparency is flattened onto white (what a person sees in a
viewer, and what a vision encoder expects). Images larger than ``max_side`` on their long side are
downscaled. The result is JPEG for photographs that arrived as JPEG and PNG otherwise, formats
llama.cpp's image decoder reads. Anything that goes wrong is a one-line :class:`MediaError` naming the
file, and nothing is stored.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from g3chat.core.errors import MediaError
from g3chat.core.media.store import MediaStore
from g3chat.core.types import AttachmentPart

FORMATS = {
    "PNG": "PNG",
    "JPEG": "JPEG",
    "MPO": "JPEG",
    "WEBP": "WebP",
    "GIF": "GIF",
    "BMP": "BMP",
    "TIFF": "TIFF",
}
MAX_SIDE = 1536  # long side after downscaling; Gemma 3n's encoder reads 768×768
MAX_PIXELS = 50_000_000  # refuse to decode more than this (decompression bombs)
JPEG_QUALITY = 92


@dataclass(frozen=True)
class PreparedImage:
    data: bytes
    mime: str
    suffix: str
    width: int
    height: int
    source_format: str


def check_file(path: Path, what: str) -> None:
    """A path that exists and is a regular file, else a MediaError naming it."""
    if not path.exists():
        raise MediaError(f"{path}: no such file")
    if path.is_dir():
        raise MediaError(f"{path}: is a directory, not {what}")
    if not path.is_file():
        raise MediaError(f"{path}: is not a regular file")


def _open(path: Path) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        if isinstance(exc, UnidentifiedImageError):
            raise MediaError(
                f"{path}: not an image g3chat can read (PNG, JPEG, WebP, GIF, BMP, TIFF)"
            ) from None
        raise MediaError(f"{path}: image is too large to decode safely") from None
    except OSError as exc:
        raise MediaError(f"{path}: cannot read image: {exc.strerror or exc}") from None
    return image


def to_rgb(image: Any) -> Any:
    """RGB with any transparency composited onto white."""
    from PIL import Image

    has_alpha = image.mode in ("RGBA", "LA", "RGBa", "La", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda v: v / 256).convert("L")  # 16-bit greyscale: keep the top 8 bits
    return image.convert("RGB") if image.mode != "RGB" else image


def prepare_image(
    path: Path | str, *, max_side: int = MAX_SIDE, max_pixels: int = MAX_PIXELS
) -> PreparedImage:
    """Decode, orient, convert and re-encode ``path``; raise MediaError (naming the file) on any problem."""
    from PIL import Image, ImageOps

    path = Path(path).expanduser()
    check_file(path, "an image")
    with _open(path) as image:
        fmt = (image.format or "").upper()
        if fmt not in FORMATS:
            raise MediaError(
                f"{path}: {fmt or 'this'} images are not supported (PNG, JPEG, WebP, GIF, BMP, TIFF)"
            )
        width, height = image.size
        if width * height > max_pixels:
            raise MediaError(
                f"{path}: image is {width}×{height} pixels, more than the {max_pixels:,}-pixel safety limit"
            )
        try:
            image.seek(0)  # animated GIF/WebP: the first frame
            image.load()
            oriented = ImageOps.exif_transpose(image) or image
            rgb = to_rgb(oriented)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise MediaError(f"{path}: corrupt or truncated image ({exc})") from None
    if max(rgb.size) > max_side:
        rgb = rgb.copy()
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if FORMATS[fmt] == "JPEG":
        rgb.save(out, format="JPEG", quality=JPEG_QUALITY)
        mime, suffix = "image/jpeg", ".jpg"
    else:
        rgb.save(out, format="PNG")
        mime, suffix = "image/png", ".png"
    return PreparedImage(out.getvalue(), mime, suffix, rgb.width, rgb.height, FORMATS[fmt])


def image_part(store: MediaStore, prepared: PreparedImage, name: str, **extra: Any) -> AttachmentPart:
    stored, sha = store.put(prepared.data, prepared.suffix)
    return AttachmentPart(
        kind="image",
        name=name,
        mime=prepared.mime,
        path=str(stored),
        sha256=sha,
        size=len(prepared.data),
        width=prepared.width,
        height=prepared.height,
        **extra,
    )


def attach_image(store: MediaStore, path: Path | str, *, max_side: int = MAX_SIDE) -> AttachmentPart:
    """Prepare ``path`` and store it; the returned part goes into a message."""
    path = Path(path).expanduser()
    return image_part(store, prepare_image(path, max_side=max_side), path.name)


def load_rgb(path: Path | str) -> Any:
    """A stored (already normalized) image as an RGB Pillow image."""
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB")
