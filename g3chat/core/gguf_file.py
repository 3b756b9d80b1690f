"""Reading a GGUF file's header: is it a model at all, is it complete, and what does it say.

A fast, dependency-free reader of the GGUF v2/v3 header (metadata and tensor table). It exists because
the ``gguf`` package's reader decodes every vocabulary entry in Python (about 24 s for a Gemma vocabulary)
and g3chat checks the file before every load. Arrays are skipped, not decoded; their lengths are kept.
The check catches what llama.cpp would otherwise report as "failed to load model": a missing file, a
directory, a non-GGUF file, and a file truncated in its header or its tensor data.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from g3chat.core.errors import ModelFileError

MAGIC = b"GGUF"

# GGUF value types -> struct format of one scalar (strings and arrays are handled apart).
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9
_SHORT_ARRAY = 1024  # numeric arrays up to this length (per-layer values) are decoded; longer ones skipped
_U64 = struct.Struct("<Q")

# ggml tensor type -> (elements per block, bytes per block), as in ggml.h (checked against gguf-py in tests).
GGML_BLOCK_SIZES: dict[int, tuple[int, int]] = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 9: (32, 40),
    10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 15: (256, 292),
    16: (256, 66), 17: (256, 74), 18: (256, 98), 19: (256, 50), 20: (32, 18), 21: (256, 110), 22: (256, 82),
    23: (256, 136), 24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8), 29: (256, 56), 30: (1, 2),
    34: (256, 54), 35: (256, 66), 39: (32, 17), 40: (64, 36), 41: (128, 18),
}  # fmt: skip

# llama_ftype (general.file_type) -> quantization name.
FILE_TYPES: dict[int, str] = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
    12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K",
    19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL",
    26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0",
    37: "TQ2_0", 38: "MXFP4_MOE",
}  # fmt: skip


@dataclass(frozen=True)
class ArrayInfo:
    """An array value: its element type and length; numbers of short arrays (per-layer values) decoded."""

    element_type: int
    length: int
    values: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int

    @property
    def nbytes(self) -> int | None:
        sizes = GGML_BLOCK_SIZES.get(self.ggml_type)
        if sizes is None:
            return None
        elements = 1
        for dim in self.shape:
            elements *= dim
        block, size = sizes
        return elements // block * size


@dataclass(frozen=True)
class GGUFSummary:
    path: Path
    version: int
    file_size: int
    metadata: dict[str, Any]
    tensors: tuple[TensorInfo, ...] = field(repr=False)
    data_offset: int = 0

    @property
    def architecture(self) -> str | None:
        return self.metadata.get("general.architecture")

    @property
    def name(self) -> str | None:
        return self.metadata.get("general.name")

    @property
    def context_length(self) -> int | None:
        arch = self.architecture
        value = self.metadata.get(f"{arch}.context_length") if arch else None
        return int(value) if isinstance(value, int) else None

    @property
    def quantization(self) -> str | None:
        file_type = self.metadata.get("general.file_type")
        return FILE_TYPES.get(file_type, f"type {file_type}") if isinstance(file_type, int) else None

    @property
    def chat_template(self) -> str | None:
        value = self.metadata.get("tokenizer.chat_template")
        return value if isinstance(value, str) else None

    def get(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(key, default)


class _Cursor:
    def __init__(self, buf: memoryview, path: Path) -> None:
        self.buf = buf
        self.pos = 0
        self.path = path

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise ModelFileError(f"{self.path}: truncated GGUF file (the header ends early)")
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return value

    def string(self) -> str:
        length = self.unpack("<Q")
        if self.pos + length > len(self.buf):
            raise ModelFileError(f"{self.path}: truncated GGUF file (the header ends early)")
        raw = bytes(self.buf[self.pos : self.pos + length])
        self.pos += length
        return raw.decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        # The hot loop of the reader (a Gemma vocabulary is 262,144 strings): keep it minimal.
        buf, pos, end = self.buf, self.pos, len(self.buf)
        read_length = _U64.unpack_from
        try:
            for _ in range(count):
                pos += 8 + read_length(buf, pos)[0]
        except struct.error:
            raise ModelFileError(f"{self.path}: truncated GGUF file (the header ends early)") from None
        if pos > end:
            raise ModelFileError(f"{self.path}: truncated GGUF file (the header ends early)")
        self.pos = pos

    def value(self, kind: int) -> Any:
        if kind in _SCALARS:
            return self.unpack(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            element_type = self.unpack("<I")
            length = self.unpack("<Q")
            if element_type == _STRING:
                self.skip_strings(length)
            elif element_type in _SCALARS:
                fmt = _SCALARS[element_type]
                start, self.pos = self.pos, self.pos + length * struct.calcsize(fmt)
                if self.pos > len(self.buf):
                    raise ModelFileError(f"{self.path}: truncated GGUF file (the header ends early)")
                if length <= _SHORT_ARRAY:
                    values = struct.unpack_from(f"<{length}{fmt[1]}", self.buf, start)
                    return ArrayInfo(element_type, length, tuple(values))
            else:
                raise ModelFileError(f"{self.path}: unsupported GGUF array of type {element_type}")
            return ArrayInfo(element_type, length)
        raise ModelFileError(f"{self.path}: corrupt GGUF header (unknown value type {kind})")


def inspect_gguf(path: Path | str, *, check_data: bool = True) -> GGUFSummary:
    """Parse the header of ``path``; raise ModelFileError with a one-line reason if it is not usable."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path}: no such file")
    if path.is_dir():
        raise ModelFileError(f"{path}: is a directory, not a GGUF model file")
    try:
        with path.open("rb") as fh:
            size = path.stat().st_size
            head = fh.read(4)
            if head != MAGIC:
                what = "it is empty" if not head else f"it starts with {head!r}"
                raise ModelFileError(f"{path}: not a GGUF model file ({what})")
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                view = memoryview(mapped)
                try:
                    return _parse(path, view, size, check_data)
                finally:
                    view.release()
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _parse(path: Path, view: memoryview, size: int, check_data: bool) -> GGUFSummary:
    cur = _Cursor(view, path)
    cur.pos = 4
    version = cur.unpack("<I")
    if version not in (2, 3):
        raise ModelFileError(f"{path}: unsupported GGUF version {version}")
    n_tensors = cur.unpack("<Q")
    n_kv = cur.unpack("<Q")
    if n_tensors > 1_000_000 or n_kv > 1_000_000:
        raise ModelFileError(f"{path}: corrupt GGUF header")
    metadata: dict[str, Any] = {}
    for _ in range(n_kv):
        key = cur.string()
        metadata[key] = cur.value(cur.unpack("<I"))
    tensors = []
    for _ in range(n_tensors):
        name = cur.string()
        n_dims = cur.unpack("<I")
        if n_dims > 8:
            raise ModelFileError(f"{path}: corrupt GGUF tensor table")
        shape = tuple(cur.unpack("<Q") for _ in range(n_dims))
        tensors.append(TensorInfo(name, shape, cur.unpack("<I"), cur.unpack("<Q")))
    alignment = metadata.get("general.alignment", 32)
    if not isinstance(alignment, int) or alignment <= 0:
        alignment = 32
    data_offset = (cur.pos + alignment - 1) // alignment * alignment
    if check_data and tensors:
        end = max(data_offset + t.offset + (t.nbytes or 0) for t in tensors)
        if end > size:
            raise ModelFileError(
                f"{path}: truncated GGUF file ({size:,} bytes, its tensors need {end:,}); download it again"
            )
    return GGUFSummary(path, version, size, metadata, tuple(tensors), data_offset)
