"""Gemma 3n's audio weights on this machine: where they live, which model they fit, fetching and checking.

``g3chat models pull --audio`` fetches only the audio tower and embedder of the original checkpoint
(:func:`g3chat.core.audio.hub.fetch_audio_weights`, HTTP range reads) into
``<models>/audio/<repo name>-audio.safetensors``. The download lands under a temporary name, is checked
from its header alone (every tensor of the tower and the embedder present with consistent shapes, each
tensor's byte size matching its dtype and shape, the data section exactly as long as the header says) and
only then renamed into place: the folder never holds a partial or malformed file for the engine to trip
over.

Which weights fit a model: ``embed_audio`` projects into the text model's hidden size, so a file fits only
a model whose ``n_embd`` equals that width (:func:`text_width` reads it from the header of an mmproj GGUF or
a safetensors file without loading anything). The width does not tell E2B from E4B (both 2048): the
installed file's header records its source repo and model size, and
:mod:`g3chat.core.audio.provenance` matches that against the loaded GGUF.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from g3chat.core.audio.config import AudioConfig
from g3chat.core.errors import InputError

AUDIO_REPOS = {"e2b": "google/gemma-3n-E2B-it", "e4b": "google/gemma-3n-E4B-it"}
PROJECTION = "embed_audio.embedding_projection.weight"
_ITEMSIZE = {"F32": 4, "F16": 2, "BF16": 2}
_MAX_HEADER = 100 << 20


def audio_dir(models_dir: Path) -> Path:
    return models_dir / "audio"


def installed_path(models_dir: Path, repo: str) -> Path:
    """Where ``g3chat models pull --audio`` keeps the audio weights of ``repo``."""
    return audio_dir(models_dir) / f"{repo.rsplit('/', 1)[-1]}-audio.safetensors"


def installed(models_dir: Path) -> list[Path]:
    """Every audio weights file that ``models pull --audio`` installed, by name."""
    folder = audio_dir(models_dir)
    return sorted(p for p in folder.glob("*-audio.safetensors") if p.is_file()) if folder.is_dir() else []


def safetensors_header(path: Path) -> tuple[dict[str, Any], int]:
    """A safetensors file's JSON header and where its data section starts; InputError if it is not one."""
    try:
        with path.open("rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            if length > min(path.stat().st_size - 8, _MAX_HEADER):
                raise ValueError
            header = json.loads(fh.read(length))
    except (OSError, ValueError, struct.error, UnicodeDecodeError):
        raise InputError(f"{path}: not a safetensors file") from None
    if not isinstance(header, dict):
        raise InputError(f"{path}: not a safetensors file")
    return header, 8 + length


def read_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """The audio tensors' shapes (transformers' names and shapes) from a file's header alone."""
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic == b"GGUF":
        from g3chat.core.audio.weights import hf_name_for_gguf
        from g3chat.core.gguf_file import inspect_gguf

        shapes = {}
        for info in inspect_gguf(path).tensors:
            name = hf_name_for_gguf(info.name)
            if name is not None:
                shapes[name] = tuple(int(d) for d in reversed(info.shape))
        return shapes
    header, _ = safetensors_header(path)
    return {
        name.removeprefix("model."): tuple(entry["shape"])
        for name, entry in header.items()
        if name != "__metadata__" and name.removeprefix("model.").startswith(("audio_tower.", "embed_audio."))
    }


def text_width(path: Path) -> int | None:
    """The text hidden size these audio weights project into (None: no audio embedder in the file)."""
    try:
        shape = read_shapes(path).get(PROJECTION)
    except (OSError, InputError):
        return None
    return int(shape[0]) if shape else None


def check_header(path: Path, base: AudioConfig | None = None) -> AudioConfig:
    """The configuration of a file's audio weights, checked from its header (complete, consistent shapes)."""
    from g3chat.core.audio.weights import check_shapes

    return check_shapes(read_shapes(path), base, str(path))


def verify_safetensors(path: Path, base: AudioConfig | None = None) -> AudioConfig:
    """Check a fetched audio weights file from its header (see the module docstring); its configuration."""
    header, data_start = safetensors_header(path)
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        itemsize = _ITEMSIZE.get(entry.get("dtype", ""))
        if itemsize is None:
            raise InputError(f"{path}: tensor {name} has unsupported dtype {entry.get('dtype')}")
        begin, stop = entry["data_offsets"]
        if stop - begin != math.prod(entry["shape"]) * itemsize or begin < 0:
            raise InputError(f"{path}: tensor {name} has {stop - begin} bytes, not what its shape needs")
        end = max(end, stop)
    if path.stat().st_size != data_start + end:
        raise InputError(f"{path}: {path.stat().st_size - data_start} bytes of data, the header says {end}")
    return check_header(path, base)


def pull_audio_weights(
    models_dir: Path,
    repo: str,
    *,
    token: str | bool | None = None,
    endpoint: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Fetch, check and install the audio weights of ``repo``; return the installed path."""
    from g3chat.core.audio.hub import fetch_audio_weights

    dest = installed_path(models_dir, repo)
    fetching = dest.with_name(dest.name + ".fetching")
    try:
        fetch_audio_weights(fetching, repo, token=token, endpoint=endpoint, progress=progress)
        verify_safetensors(fetching)
        os.replace(fetching, dest)
    finally:
        fetching.unlink(missing_ok=True)
    return dest
