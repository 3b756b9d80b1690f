"""Reading a GGUF file's header: is it a model at all, is it complete, and what does it say.

A fast reader of the GGUF v2/v3 header (metadata and tensor table; the type tables are gguf-py's). It
exists because the ``gguf`` package's reader decodes every vocabulary entry in Python (about 24 s for a
Gemma vocabulary) and g3chat checks the file before every load. Arrays are skipped, not decoded; their
lengths are kept. The check catches what llama.cpp would otherwise report as "failed to load model": a
missing file, a directory, a non-GGUF file, and a file truncated in its header or its tensor data.
"""

from __future__ import annotations

import functools
import importlib.util
import mmap
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
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


@functools.cache
def _gguf_constants() -> ModuleType:
    """gguf-py's ``gguf/constants.py`` (the ggml type and file-type tables), loaded on first use.

    Loaded alone, without the ``gguf`` package's ``__init__``, which imports its reader, writer, numpy and
    yaml (about 0.3 s); the tables module itself takes about 20 ms and imports only ``enum``.
    """
    if "gguf.constants" in sys.modules:
        return sys.modules["gguf.constants"]
    spec = importlib.util.find_spec("gguf")
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "constants.py"
        alone = importlib.util.spec_from_file_location("g3chat._gguf_constants", path)
        if alone is not None and alone.loader is not None:
            module = importlib.util.module_from_spec(alone)
            try:
                alone.loader.exec_module(module)
                return module
            except ImportError:  # a later gguf-py whose tables import the package: take the slow way
                pass
    import gguf.constants

    return gguf.constants


def ggml_block_size(ggml_type: int) -> tuple[int, int] | None:
    """(elements per block, bytes per block) of a ggml tensor type, from gguf-py; None if unknown."""
    constants = _gguf_constants()
    try:
        return constants.GGML_QUANT_SIZES[constants.GGMLQuantizationType(ggml_type)]
    except (ValueError, KeyError):
        return None


def ggml_type_id(name: str) -> int:
    """The number of a ggml tensor type by its gguf-py name, e.g. "Q4_K" -> 12."""
    return int(_gguf_constants().GGMLQuantizationType[name])


def file_type_name(file_type: int) -> str | None:
    """The quantization name of a llama_ftype (``general.file_type``), e.g. 15 -> "Q4_K_M"."""
    try:
        member = _gguf_constants().LlamaFileType(file_type)
    except ValueError:
        return None
    return member.name.removeprefix("MOSTLY_").removeprefix("ALL_")


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
        sizes = ggml_block_size(self.ggml_type)
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
        if not isinstance(file_type, int):
            return None
        return file_type_name(file_type) or f"type {file_type}"

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
