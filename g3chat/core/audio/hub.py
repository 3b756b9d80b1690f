"""Fetch only Gemma 3n's audio tower from the original checkpoint, with HTTP range reads.

``google/gemma-3n-E2B-it`` keeps its audio tower (``model.audio_tower.*``) and audio embedder
(``model.embed_audio.*``) among ~11 GB of safetensors shards. This reads the shard index and each shard's
header, then asks the Hub for just the byte ranges holding those tensors (about 1.4 GB in bf16) and
writes them, unconverted, into one local safetensors file, atomically: a failure leaves no file behind. Its
header records where they came from (``source``: repo@revision, ``model_size``: e2b or e4b), which is how
an E4B model tells E2B's tower from its own (same width; see :mod:`g3chat.core.audio.provenance`).
The repository is gated: the user must accept its license on huggingface.co and provide a token
(``HF_TOKEN`` or ``huggingface-cli login``), which huggingface_hub finds as usual.

huggingface_hub provides the URLs, the authenticated HTTP session and the Hub's error types; the ranges
are read with that session.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from g3chat.core.errors import G3ChatError, InputError

REPO_ID = "google/gemma-3n-E2B-it"
PREFIXES = ("model.audio_tower.", "model.embed_audio.")
INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"
CHUNK = 1 << 20


@dataclass(frozen=True)
class _Tensor:
    name: str
    entry: dict[str, Any]
    begin: int  # absolute offsets in the shard
    end: int


class _Hub:
    def __init__(self, repo_id: str, revision: str, token: str | bool | None, endpoint: str | None) -> None:
        from huggingface_hub.utils import build_hf_headers, get_session

        self.repo_id, self.revision, self.endpoint = repo_id, revision, endpoint
        self.session = get_session()
        self.headers = build_hf_headers(token=token)

    def url(self, filename: str) -> str:
        from huggingface_hub import hf_hub_url

        return hf_hub_url(self.repo_id, filename, revision=self.revision, endpoint=self.endpoint)

    def get(self, filename: str, first: int | None = None, last: int | None = None) -> bytes | None:
        """The file (or the bytes first..last of it); None when the repository has no such file."""
        from huggingface_hub.errors import EntryNotFoundError

        headers = dict(self.headers)
        if first is not None:
            headers["Range"] = f"bytes={first}-{last}"
        response = self.session.get(self.url(filename), headers=headers, follow_redirects=True)
        try:
            self.check(response)
        except EntryNotFoundError:
            return None
        return response.content

    def need(self, filename: str, first: int | None = None, last: int | None = None) -> bytes:
        content = self.get(filename, first, last)
        if content is None:
            raise InputError(f"{self.repo_id} has no file {filename}")
        return content

    def stream(self, filename: str, first: int, last: int, sink: Callable[[bytes], None]) -> None:
        headers = {**self.headers, "Range": f"bytes={first}-{last}"}
        url = self.url(filename)
        with self.session.stream("GET", url, headers=headers, follow_redirects=True) as response:
            if response.status_code >= 400:
                response.read()  # the error's details are in the body
            self.check(response)
            if response.status_code != 206:
                raise G3ChatError(f"{self.endpoint or 'the Hub'} ignored a range request for {filename}")
            for chunk in response.iter_bytes(CHUNK):
                sink(chunk)

    def check(self, response: Any) -> None:
        from huggingface_hub.errors import (
            EntryNotFoundError,
            GatedRepoError,
            HfHubHTTPError,
            RepositoryNotFoundError,
        )
        from huggingface_hub.utils import hf_raise_for_status

        try:
            hf_raise_for_status(response)
        except EntryNotFoundError:
            raise
        except GatedRepoError:
            raise InputError(
                f"{self.repo_id} is gated: accept its license on huggingface.co, then set HF_TOKEN "
                "(or run `huggingface-cli login`)"
            ) from None
        except RepositoryNotFoundError:
            raise InputError(f"{self.repo_id} not found (or it is private and no token was given)") from None
        except HfHubHTTPError as exc:
            raise G3ChatError(f"downloading from {self.repo_id} failed: {str(exc).splitlines()[0]}") from None


def _shard_tensors(hub: _Hub, filename: str) -> list[_Tensor]:
    (length,) = struct.unpack("<Q", hub.need(filename, 0, 7)[:8])
    if length > 100 << 20:
        raise G3ChatError(f"{filename}: implausible safetensors header ({length} bytes)")
    header = json.loads(hub.need(filename, 8, 8 + length - 1))
    base = 8 + length
    return [
        _Tensor(name, entry, base + entry["data_offsets"][0], base + entry["data_offsets"][1])
        for name, entry in header.items()
        if name.startswith(PREFIXES)
    ]


def _plan(hub: _Hub) -> dict[str, list[_Tensor]]:
    """Shard file -> the audio tensors it holds, in file order."""
    index = hub.get(INDEX)
    if index is None:
        files = [SINGLE]  # no index: a single-file checkpoint
    else:
        weight_map: dict[str, str] = json.loads(index)["weight_map"]
        files = sorted({f for name, f in weight_map.items() if name.startswith(PREFIXES)})
    plan = {f: sorted(_shard_tensors(hub, f), key=lambda t: t.begin) for f in files}
    if not any(plan.values()):
        raise InputError(f"{hub.repo_id} has no audio tower tensors ({', '.join(PREFIXES)})")
    return plan


def _ranges(tensors: list[_Tensor]) -> list[tuple[int, int]]:
    """Merge adjacent tensors into as few [first, last] byte ranges as possible."""
    merged: list[list[int]] = []
    for t in tensors:
        if merged and t.begin == merged[-1][1]:
            merged[-1][1] = t.end
        else:
            merged.append([t.begin, t.end])
    return [(a, b - 1) for a, b in merged]


def fetch_audio_weights(
    dest: Path,
    repo_id: str = REPO_ID,
    *,
    revision: str = "main",
    token: str | bool | None = None,
    endpoint: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Download the audio tensors of ``repo_id`` into ``dest`` (one safetensors file); return ``dest``.

    ``progress(done, total)`` is called as bytes arrive. Raises InputError for a gated or missing repo.
    """
    where = endpoint or "huggingface.co"
    try:
        hub = _Hub(repo_id, revision, token, endpoint)
        plan = _plan(hub)
    except Exception as exc:
        if _network_error(exc):
            raise G3ChatError(f"cannot reach {where}: {exc}") from None
        raise
    from g3chat.core.audio.provenance import size_in

    recorded = {"format": "pt", "source": f"{repo_id}@{revision}", "model_size": size_in(repo_id) or ""}
    header: dict[str, Any] = {"__metadata__": {k: v for k, v in recorded.items() if v}}
    offset = 0
    for tensors in plan.values():
        for t in tensors:
            size = t.end - t.begin
            header[t.name] = {**t.entry, "data_offsets": [offset, offset + size]}
            offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    done = 0
    try:
        with partial.open("wb") as fh:
            fh.write(struct.pack("<Q", len(raw)) + raw)

            def sink(chunk: bytes) -> None:
                nonlocal done
                fh.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, offset)

            for filename, tensors in plan.items():
                for first, last in _ranges(tensors):
                    hub.stream(filename, first, last, sink)
            if done != offset:
                raise G3ChatError(f"{repo_id}: the download ended early ({done} of {offset} bytes)")
            fh.flush()
            os.fsync(fh.fileno())
        partial.replace(dest)
    except BaseException as exc:
        partial.unlink(missing_ok=True)
        if isinstance(exc, Exception) and _network_error(exc):
            raise G3ChatError(f"download from {where} failed: {exc}") from None
        raise
    return dest


def _network_error(exc: BaseException) -> bool:
    """A transport failure of huggingface_hub's HTTP client (httpx2), or a socket error."""
    return isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in ("httpx2", "httpcore2")
