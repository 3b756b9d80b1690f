"""g3chat's thin layer over llama.cpp's mtmd (``llama_cpp.mtmd_cpp``): a projector turns media into chunks.

A :class:`Projector` owns one mtmd context (the mmproj GGUF, bound to the loaded text model). For an
attachment it builds a bitmap (RGB pixels from Pillow, or float samples at the projector's rate) and lets
``mtmd_tokenize_from_parts`` turn it into chunks: the model's own wrapper tokens (``<start_of_image>`` …
``<end_of_image>`` for Gemma) as text, and one image or audio chunk whose embeddings mtmd computes when the
chunk is evaluated. Tokenized media are cached by sha256, so history images are not decoded every turn.

In the engine's list of cached tokens a media chunk is represented by *placeholder ids*: negative numbers
derived from the projector and the media's sha256, one per position. The same image at the same place
therefore matches the KV cache (and saved states) and is never evaluated twice; a different image, or the
same one through another projector, does not match.
"""

from __future__ import annotations

import ctypes
import hashlib
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from g3chat.core.engine.native_log import native_log
from g3chat.core.errors import MediaError, ModelFileError
from g3chat.core.gguf_file import TensorInfo, inspect_gguf
from g3chat.core.types import AttachmentPart

CACHE_ITEMS = 16
GEMMA3N_AUDIO = (
    "llama.cpp does not run Gemma 3n's audio encoder yet (its projector's audio tower is skipped), so the "
    "model cannot hear audio"
)


@dataclass(frozen=True)
class MediaChunk:
    """One image/audio chunk of a tokenized attachment; valid while its :class:`MediaItem` lives."""

    pointer: int
    n_tokens: int
    placeholders: tuple[int, ...]


class PromptChunk(Protocol):
    """A media piece of a prompt plan (a :class:`MediaChunk`, or hearing's AudioChunk): it stands in the
    prompt as ``n_tokens`` placeholder ids."""

    @property
    def n_tokens(self) -> int: ...
    @property
    def placeholders(self) -> tuple[int, ...]: ...


@dataclass(frozen=True)
class MediaItem:
    """A tokenized attachment: text token runs and media chunks, in order."""

    pieces: tuple[list[int] | PromptChunk, ...]
    owner: Any  # keeps the mtmd chunk list alive

    @property
    def n_tokens(self) -> int:
        return sum(len(p) if isinstance(p, list) else p.n_tokens for p in self.pieces)


def gemma3nv_problem(tensors: Sequence[TensorInfo]) -> str | None:
    """Why llama.cpp 0.3.36's MobileNetV5 graph would abort the process on this projector (None: it runs).

    Checked before loading because ggml stops the whole program, not the call: a layer scale stored flat
    ([C], as the converter in llama-cpp-python 0.3.36 writes them) is broadcast along the image width
    instead of the channels, and a depthwise kernel stored as F32 meets an F16 im2col that the CPU backend
    cannot multiply.
    """
    for t in tensors:
        if t.name.endswith(".layer_scale.gamma") and len(t.shape) == 1:
            return (
                f"its layer scales are stored flat ({t.name} has shape [{t.shape[0]}], not [1, C, 1, 1]); "
                "convert it again with a converter that stores them as [1, C, 1, 1]"
            )
        if t.name.endswith(_DEPTHWISE) and t.ggml_type == GGML_F32:
            return f"its depthwise convolutions are F32 ({t.name}); use an F16 mmproj (--outtype f16)"
    return None


_DEPTHWISE = ("dw_start.conv.weight", "dw_mid.conv.weight", "down_conv.weight")
GGML_F32 = 0


def placeholder_ids(key: str, n: int) -> tuple[int, ...]:
    """``n`` negative ids derived from ``key``: never a real token, equal only for equal keys."""
    base = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    return tuple(-1 - ((base + i) % (1 << 30)) for i in range(n))


class _Chunks:
    def __init__(self, pointer: int) -> None:
        import llama_cpp.mtmd_cpp as mtmd

        self.pointer = pointer
        self._finalizer = weakref.finalize(self, mtmd.mtmd_input_chunks_free, pointer)


class Projector:
    """An mmproj GGUF loaded into mtmd for one text model."""

    def __init__(self, path: Path | str, llm: Any, *, n_threads: int, use_gpu: bool) -> None:
        import llama_cpp.mtmd_cpp as mtmd

        self.path = Path(path)
        summary = inspect_gguf(self.path)
        self.projector_type = str(
            summary.get("clip.projector_type") or summary.get("clip.vision.projector_type") or "unknown"
        )
        self.has_audio_encoder = bool(summary.get("clip.has_audio_encoder", False))
        if self.projector_type == "gemma3nv" and (problem := gemma3nv_problem(summary.tensors)):
            raise ModelFileError(f"{self.path}: llama.cpp would abort on this Gemma 3n projector: {problem}")
        native_log.route_mtmd()
        params = mtmd.mtmd_context_params_default()
        params.use_gpu = use_gpu
        params.n_threads = n_threads
        params.print_timings = False
        params.warmup = False
        ctx = mtmd.mtmd_init_from_file(str(self.path).encode(), llm.model, params)
        if not ctx:
            detail = native_log.explain() or "not a projector for this model"
            raise ModelFileError(f"{self.path}: llama.cpp could not load the projector: {detail}")
        self._ctx = ctx
        self.vision = bool(mtmd.mtmd_support_vision(ctx))
        self.audio = bool(mtmd.mtmd_support_audio(ctx))
        self.audio_rate = int(mtmd.mtmd_get_audio_sample_rate(ctx)) if self.audio else None
        if mtmd.mtmd_decode_use_mrope(ctx):
            self.close()
            raise ModelFileError(
                f"{self.path}: this projector uses M-RoPE positions, which g3chat does not support"
            )
        st = self.path.stat()
        self.key = f"{self.path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        self._items: OrderedDict[str, MediaItem] = OrderedDict()

    # ---------------------------------------------------------------------------------- capability

    def cannot_take(self, part: AttachmentPart) -> str | None:
        """Why this projector cannot take ``part`` (None when it can)."""
        if part.kind == "image" and not self.vision:
            return f"the projector {self.path.name} has no vision encoder"
        if part.kind == "audio" and not self.audio:
            if self.projector_type.startswith("gemma3n") or self.has_audio_encoder:
                return GEMMA3N_AUDIO
            return f"the projector {self.path.name} has no audio encoder"
        return None

    # ------------------------------------------------------------------------------------ tokenize

    def tokenize(self, part: AttachmentPart) -> MediaItem:
        """Chunks for ``part`` (cached by sha256). Raises MediaError when the file cannot be read."""
        cached = self._items.get(part.sha256)
        if cached is not None:
            self._items.move_to_end(part.sha256)
            return cached
        item = self._tokenize(part)
        self._items[part.sha256] = item
        while len(self._items) > CACHE_ITEMS:
            self._items.popitem(last=False)  # freed when no prompt plan holds it any more
        return item

    def _bitmap(self, part: AttachmentPart) -> Any:
        import llama_cpp.mtmd_cpp as mtmd
        import numpy as np

        try:
            if part.kind == "image":
                from g3chat.core.media.images import load_rgb

                image = load_rgb(part.path)
                data = image.tobytes()
                buffer = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
                return mtmd.mtmd_bitmap_init(image.width, image.height, buffer)
            from g3chat.core.media.audio import decode_audio

            samples = np.ascontiguousarray(decode_audio(part.path, rate=self.audio_rate or 16_000))
            pointer = samples.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
            return mtmd.mtmd_bitmap_init_from_audio(len(samples), pointer)
        except OSError as exc:
            raise MediaError(f"{part.path}: cannot read attachment {part.name}: {exc}") from None

    def _tokenize(self, part: AttachmentPart) -> MediaItem:
        import llama_cpp.mtmd_cpp as mtmd

        bitmap = self._bitmap(part)
        if not bitmap:
            raise MediaError(f"{part.name}: llama.cpp could not take this {part.kind}")
        try:
            mtmd.mtmd_bitmap_set_id(bitmap, part.sha256.encode())
            chunks = _Chunks(mtmd.mtmd_input_chunks_init())
            entry = mtmd.mtmd_input_part(text=None, bitmap=bitmap)
            parts = (ctypes.POINTER(mtmd.mtmd_input_part) * 1)(ctypes.pointer(entry))
            rc = mtmd.mtmd_tokenize_from_parts(self._ctx, chunks.pointer, parts, 1, False)
        finally:
            mtmd.mtmd_bitmap_free(bitmap)
        if rc != 0:
            detail = native_log.explain() or f"error {rc}"
            raise MediaError(f"{part.name}: llama.cpp could not tokenize this {part.kind}: {detail}")
        pieces: list[list[int] | MediaChunk] = []
        media_index = 0
        for i in range(mtmd.mtmd_input_chunks_size(chunks.pointer)):
            chunk = mtmd.mtmd_input_chunks_get(chunks.pointer, i)
            if mtmd.mtmd_input_chunk_get_type(chunk) == mtmd.MTMD_INPUT_CHUNK_TYPE_TEXT:
                count = ctypes.c_size_t()
                tokens = mtmd.mtmd_input_chunk_get_tokens_text(chunk, ctypes.byref(count))
                pieces.append([int(tokens[j]) for j in range(count.value)])
                continue
            n = int(mtmd.mtmd_input_chunk_get_n_tokens(chunk))
            if int(mtmd.mtmd_input_chunk_get_n_pos(chunk)) != n:
                raise MediaError(
                    f"{part.name}: this projector's chunks use positions g3chat does not support"
                )
            key = f"{self.key}|{part.sha256}|{media_index}"
            pieces.append(MediaChunk(int(chunk), n, placeholder_ids(key, n)))
            media_index += 1
        return MediaItem(tuple(pieces), chunks)

    # ---------------------------------------------------------------------------------------- eval

    def evaluate(self, llm: Any, chunk: MediaChunk, n_batch: int) -> int:
        """Decode ``chunk`` right after the cached tokens; return the new number of cached positions."""
        import llama_cpp
        import llama_cpp.mtmd_cpp as mtmd

        n_past = llm.n_tokens
        new_n_past = llama_cpp.llama_pos(0)
        rc = mtmd.mtmd_helper_eval_chunk_single(
            self._ctx, llm.ctx, chunk.pointer, n_past, 0, n_batch, False, ctypes.byref(new_n_past)
        )
        if rc != 0:
            detail = native_log.explain() or f"error {rc}"
            raise RuntimeError(f"evaluating an attachment failed: {detail}")
        return int(new_n_past.value)

    def close(self) -> None:
        import llama_cpp.mtmd_cpp as mtmd

        self._items = OrderedDict()
        if self._ctx:
            mtmd.mtmd_free(self._ctx)
        self._ctx = None
