"""Which Gemma 3n model size (E2B, E4B) a text GGUF is, and which one a file of audio weights was made for.

The width does not tell them apart: E2B and E4B both have a text hidden size of 2048, so E2B's audio tower
projects into an E4B model's width as well as into its own, and the weights are not interchangeable (each
checkpoint trained its own tower). What does tell them apart:

- a text GGUF: ``gemma3n.block_count`` (30 for E2B, 35 for E4B: the published configurations), else a
  size named in ``general.size_label``, ``general.basename``, ``general.finetune`` or ``general.name``
  (llama.cpp's converter turns ``gemma-3n-E4B-it`` into basename ``gemma``, finetune ``3n-E4B-it``);
- audio weights that ``g3chat models pull --audio`` installed: the ``model_size`` and ``source`` (repo)
  recorded in the safetensors header, else the file name, which has always been ``<repo name>-audio``
  (so installs made before the header carried provenance are still told apart);
- an mmproj GGUF: a size named in its ``general.*`` names.

None means the file does not say (the tiny test models, a hand-made file): g3chat then goes by width alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from g3chat.core.errors import InputError

BLOCKS = {30: "e2b", 35: "e4b"}  # gemma3n.block_count -> size
NAME_KEYS = ("general.size_label", "general.basename", "general.finetune", "general.name")
_SIZE = re.compile(r"(?<![a-z0-9])(e\d+b)(?![a-z0-9])", re.IGNORECASE)


def size_in(text: str) -> str | None:
    """The Gemma 3n size a name mentions (``gemma-3n-E4B-it`` -> ``e4b``), or None."""
    found = {m.lower() for m in _SIZE.findall(text)}
    return found.pop() if len(found) == 1 else None


def _named(metadata: Mapping[str, Any]) -> str | None:
    sizes = {size_in(str(metadata[k])) for k in NAME_KEYS if metadata.get(k)} - {None}
    return sizes.pop() if len(sizes) == 1 else None


def model_size(metadata: Mapping[str, Any]) -> str | None:
    """The size of a Gemma 3n text model from its GGUF metadata (llama.cpp's strings or parsed values)."""
    try:
        blocks = int(str(metadata.get("gemma3n.block_count", "")))
    except ValueError:
        blocks = 0
    return BLOCKS.get(blocks) or _named(metadata)


def weights_size(path: Path) -> str | None:
    """The model size a file of audio weights was made for, from what it records (see the module doc)."""
    from g3chat.core.audio.install import safetensors_header
    from g3chat.core.gguf_file import inspect_gguf

    try:
        with path.open("rb") as fh:
            if fh.read(4) == b"GGUF":
                return _named(inspect_gguf(path, check_data=False).metadata)
        header, _ = safetensors_header(path)
    except (OSError, InputError):
        return None
    recorded = header.get("__metadata__")
    if isinstance(recorded, dict):
        for key in ("model_size", "source"):
            size = size_in(str(recorded.get(key, "")))
            if size:
                return size
    return size_in(path.name.removesuffix(".safetensors").removesuffix("-audio"))
