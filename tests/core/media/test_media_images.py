"""Images: every accepted format, orientation, colour modes, limits and bad files; one stored copy each."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from g3chat.core.errors import MediaError
from g3chat.core.media.images import attach_image, prepare_image
from g3chat.core.media.store import MediaStore
from tests.fixtures import media_files as mf


@pytest.fixture
def store(tmp_path: Path) -> MediaStore:
    return MediaStore(tmp_path / "media")


def _stored_rgb(part) -> Image.Image:
    with Image.open(part.path) as img:
        assert img.mode == "RGB"
        return img.convert("RGB")


def _close(a, b, tol: int = 24) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b))


@pytest.mark.parametrize(
    ("fmt", "suffix", "mime"),
    [
        ("PNG", ".png", "image/png"),
        ("JPEG", ".jpg", "image/jpeg"),
        ("WEBP", ".webp", "image/png"),
        ("GIF", ".gif", "image/png"),
        ("BMP", ".bmp", "image/png"),
        ("TIFF", ".tiff", "image/png"),
    ],
)
def test_every_format_is_normalized_and_stored(store: MediaStore, tmp_path: Path, fmt, suffix, mime) -> None:
    src = mf.image(tmp_path / f"pic{suffix}", fmt)
    part = attach_image(store, src)
    assert (part.kind, part.name, part.mime) == ("image", src.name, mime)
    assert (part.width, part.height) == (40, 30)
    img = _stored_rgb(part)
    assert img.size == (40, 30)
    assert _close(img.getpixel((5, 5)), mf.RED)
    assert Path(part.path).parent.parent == store.root and part.sha256 in Path(part.path).name


def test_same_file_twice_is_stored_once(store: MediaStore, tmp_path: Path) -> None:
    src = mf.image(tmp_path / "a.png", "PNG")
    copy = tmp_path / "b.png"
    copy.write_bytes(src.read_bytes())
    first, second = attach_image(store, src), attach_image(store, copy)
    assert first.sha256 == second.sha256 and first.path == second.path
    assert len(store.files()) == 1


def test_exif_rotation_is_applied(store: MediaStore, tmp_path: Path) -> None:
    part = attach_image(store, mf.exif_rotated_jpeg(tmp_path / "rot.jpg"))
    img = _stored_rgb(part)
    assert img.size == (20, 40) == (part.width, part.height)
    assert _close(img.getpixel((10, 5)), mf.BLUE, 40) and _close(img.getpixel((10, 35)), mf.RED, 40)


def test_cmyk_becomes_rgb(store: MediaStore, tmp_path: Path) -> None:
    src = mf.image(tmp_path / "cmyk.jpg", "JPEG", color=(0, 255, 255, 0), mode="CMYK")  # cyan 0 = red
    img = _stored_rgb(attach_image(store, src))
    assert _close(img.getpixel((3, 3)), (255, 0, 0), 40)


def test_transparency_is_flattened_onto_white(store: MediaStore, tmp_path: Path) -> None:
    img = _stored_rgb(attach_image(store, mf.transparent_png(tmp_path / "alpha.png")))
    assert img.getpixel((5, 5)) == (255, 255, 255) and img.getpixel((0, 0)) == (255, 0, 0)


def test_palette_with_transparency(store: MediaStore, tmp_path: Path) -> None:
    src = tmp_path / "pal.png"
    Image.open(mf.transparent_png(tmp_path / "t.png")).convert("P").save(src, transparency=0)
    img = _stored_rgb(attach_image(store, src))
    assert img.mode == "RGB" and img.size == (10, 10)


def test_gif_first_frame(store: MediaStore, tmp_path: Path) -> None:
    img = _stored_rgb(attach_image(store, mf.animated_gif(tmp_path / "anim.gif")))
    assert _close(img.getpixel((8, 8)), mf.RED, 40)


def test_one_pixel_image(store: MediaStore, tmp_path: Path) -> None:
    part = attach_image(store, mf.image(tmp_path / "dot.png", "PNG", size=(1, 1)))
    assert (part.width, part.height) == (1, 1)


def test_large_image_is_downscaled(tmp_path: Path) -> None:
    src = mf.image(tmp_path / "big.png", "PNG", size=(3000, 1500))
    prepared = prepare_image(src, max_side=1536)
    assert (prepared.width, prepared.height) == (1536, 768)


def test_decompression_bomb_is_refused_and_nothing_stored(store: MediaStore, tmp_path: Path) -> None:
    src = mf.huge_png(tmp_path / "bomb.png")
    assert src.stat().st_size < 1_000_000
    with pytest.raises(MediaError, match=r"bomb\.png: .*(pixel|too large)"):
        attach_image(store, src)
    assert store.files() == []


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_image(store: MediaStore, tmp_path: Path, fmt: str) -> None:
    full = mf.noisy_png(tmp_path / "full.png")
    if fmt == "JPEG":
        Image.open(full).save(tmp_path / "full.jpg", quality=95)
        full = tmp_path / "full.jpg"
    bad = mf.truncated(full, tmp_path / f"cut{full.suffix}")
    with pytest.raises(MediaError, match=rf"cut\{full.suffix}: corrupt or truncated"):
        attach_image(store, bad)
    assert store.files() == []


def test_text_file_named_png(store: MediaStore, tmp_path: Path) -> None:
    fake = tmp_path / "notes.png"
    fake.write_text("not an image at all\n")
    with pytest.raises(MediaError, match=r"notes\.png: not an image"):
        attach_image(store, fake)
    assert store.files() == []


def test_directory_and_missing_file(store: MediaStore, tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="is a directory"):
        attach_image(store, tmp_path)
    with pytest.raises(MediaError, match="no such file"):
        attach_image(store, tmp_path / "gone.png")
