"""Content parts with media (``image_url``, ``input_audio``) as stored attachments, as ``ask`` attaches files.

Images come as ``data:`` URLs or local files (a path or a ``file://`` URL); ``http(s)`` URLs are fetched
only when the server was started with ``--allow-fetch``. Audio comes as OpenAI's ``input_audio``: base64
WAV or MP3. Each is decoded and normalized through :mod:`g3chat.core.media` into the media store, so the
engine takes it like any attachment (images through the projector, audio through Gemma 3n's audio path).
"""

from __future__ import annotations

import base64
import binascii
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

from g3chat.core.errors import MediaError
from g3chat.core.media.attach import AttachRequest, attach, clean_path
from g3chat.core.media.store import MediaStore
from g3chat.core.types import AttachmentPart
from g3chat.server.wire_request import WireError, bad

MAX_FETCH = 32 * 1024 * 1024
_SUFFIXES = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/bmp": ".bmp",
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "audio/mpeg": ".mp3",
    "audio/mp3": ".mp3",
}
AUDIO_FORMATS = {"wav": ".wav", "mp3": ".mp3"}


def data_url(url: str) -> tuple[str, bytes]:
    """(mime type, bytes) of a ``data:`` URL."""
    head, sep, payload = url[5:].partition(",")
    if not sep:
        raise bad("a data: URL needs a comma before its data")
    mime, _, encoding = head.partition(";")
    try:
        data = (
            base64.b64decode(payload, validate=False) if "base64" in encoding else unquote_to_bytes(payload)
        )
    except (binascii.Error, ValueError):
        raise bad("the data: URL's base64 is malformed") from None
    return mime.strip().lower(), data


class MediaReader:
    def __init__(self, store: MediaStore, *, allow_fetch: bool = False) -> None:
        self.store = store
        self.allow_fetch = allow_fetch

    def __call__(self, kind: str, part: Mapping[str, Any]) -> AttachmentPart:
        try:
            if kind == "image":
                return self._image(part)
            return self._audio(part)
        except MediaError as exc:
            raise bad(str(exc)) from None

    def _image(self, part: Mapping[str, Any]) -> AttachmentPart:
        spec = part.get("image_url")
        url = spec.get("url") if isinstance(spec, Mapping) else spec
        if not isinstance(url, str) or not url:
            raise bad("image_url needs a url")
        if url.startswith("data:"):
            mime, data = data_url(url)
            if not mime.startswith("image/"):
                raise bad(f"image_url: a data: URL of type {mime or 'unknown'} is not an image")
            return self._stored("image", data, _SUFFIXES.get(mime, ".img"), "image")
        if url.startswith(("http://", "https://")):
            if not self.allow_fetch:
                raise bad("image_url: fetching from the network is off (start serve with --allow-fetch)")
            return self._stored("image", self._fetch(url), Path(url.split("?")[0]).suffix, "image")
        path = clean_path(url)
        if not path.is_absolute():
            raise bad("image_url: a local image needs an absolute path or a file:// URL")
        return attach(self.store, AttachRequest("image", path))[0]

    def _audio(self, part: Mapping[str, Any]) -> AttachmentPart:
        spec = part.get("input_audio")
        if not isinstance(spec, Mapping) or not isinstance(spec.get("data"), str):
            raise bad("input_audio needs data (base64) and a format")
        suffix = AUDIO_FORMATS.get(str(spec.get("format") or "").lower())
        if suffix is None:
            raise bad("input_audio.format must be wav or mp3")
        try:
            data = base64.b64decode(spec["data"], validate=False)
        except (binascii.Error, ValueError):
            raise bad("input_audio.data is not base64") from None
        return self._stored("audio", data, suffix, "audio")

    def _stored(self, kind: str, data: bytes, suffix: str, name: str) -> AttachmentPart:
        if not data:
            raise bad(f"the {kind} is empty")
        with tempfile.TemporaryDirectory(prefix="g3chat-serve-") as folder:
            path = Path(folder) / f"{name}{suffix or '.bin'}"
            path.write_bytes(data)
            return attach(self.store, AttachRequest("image" if kind == "image" else "audio", path))[0]

    def _fetch(self, url: str) -> bytes:
        import httpx2 as httpx

        try:
            with httpx.stream("GET", url, timeout=30, follow_redirects=True) as response:
                response.raise_for_status()
                data = b""
                for piece in response.iter_bytes():
                    data += piece
                    if len(data) > MAX_FETCH:
                        raise bad(f"image_url: {url} is larger than {MAX_FETCH // 2**20} MiB")
                return data
        except httpx.HTTPError as exc:
            raise WireError(400, f"image_url: could not fetch {url}: {exc}") from None
