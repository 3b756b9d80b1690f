"""Feeding llama.cpp embeddings instead of token ids (audio soft tokens, and anything else computed outside).

llama.cpp's batch API takes either token ids or rows of ``n_embd`` floats (``llama_batch_init(n, n_embd, 1)``
fills ``batch.embd``). What the model does with a row:

- the row is used *as is*: the ``sqrt(n_embd)`` scale Gemma applies to looked-up token embeddings is
  skipped for embedding input (``ubatch.token ? sqrtf(n_embd) : 1``), as transformers skips it for the
  soft tokens it scatters into ``inputs_embeds``;
- Gemma 3n's per-layer inputs: for token ids llama.cpp looks up ``per_layer_token_embd[id]``; for embedding
  rows it uses row 0 (the padding token) for every position of the batch, which is what transformers does
  for every id outside the per-layer vocabulary (audio and image soft tokens, ``<end_of_audio>``,
  ``<end_of_image>``; see ``Gemma3nTextModel.get_per_layer_inputs``). A batch is all tokens or all rows,
  so a prompt is decoded as alternating token and embedding batches.

:func:`decode_embeddings` appends rows after what the context holds and keeps llama-cpp-python's
``Llama`` bookkeeping (``input_ids``, ``n_tokens``, ``scores``) as :meth:`Llama.eval` does for tokens, so
the engine's KV-prefix logic keeps working: the rows' positions are recorded under a placeholder token id.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from g3chat.core.errors import EngineError


def decode_embeddings(
    llm: Any, rows: np.ndarray, *, ids: Sequence[int] | int, all_logits: bool = False
) -> None:
    """Evaluate ``rows`` [n, n_embd] at the next positions of sequence 0 of ``llm`` (a ``llama_cpp.Llama``).

    Logits are produced for the last row (or every row with ``all_logits``), ready for sampling or for
    ``llama_get_logits_ith``. ``ids`` are the token ids recorded in ``llm.input_ids`` for these positions
    (one per row, or one for all): the prompt's placeholder ids, so that prefix matching sees them.
    """
    import llama_cpp

    rows = np.ascontiguousarray(rows, dtype=np.float32)
    n_embd = llama_cpp.llama_model_n_embd(llm.model)
    if rows.ndim != 2 or rows.shape[1] != n_embd:
        raise EngineError(f"embeddings of shape {rows.shape} do not fit this model (n_embd {n_embd})")
    n_total = rows.shape[0]
    recorded = np.broadcast_to(np.asarray(ids, dtype=np.intc), (n_total,))
    if llm.n_tokens + n_total > llm.n_ctx():
        raise EngineError(f"{n_total} embedding positions do not fit the context window")
    llm._ctx.kv_cache_seq_rm(-1, llm.n_tokens, -1)
    step = max(1, llm.n_batch)
    batch = llama_cpp.llama_batch_init(min(step, n_total), n_embd, 1)
    try:
        for start in range(0, n_total, step):
            chunk = rows[start : start + step]
            n = chunk.shape[0]
            n_past = llm.n_tokens
            ctypes.memmove(batch.embd, chunk.ctypes.data, chunk.nbytes)
            batch.n_tokens = n
            last = start + n == n_total
            for i in range(n):
                batch.pos[i] = n_past + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = int(all_logits or (last and i == n - 1))
            code = llama_cpp.llama_decode(llm.ctx, batch)
            if code != 0:
                raise EngineError(f"llama.cpp could not evaluate embeddings (llama_decode returned {code})")
            llm.input_ids[n_past : n_past + n] = recorded[start : start + n]
            if getattr(llm, "_logits_all", False) and all_logits:
                logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n, llm.n_vocab()))
                llm.scores[n_past : n_past + n, :] = logits
            llm.n_tokens = n_past + n
    finally:
        llama_cpp.llama_batch_free(batch)


def logits_rows(llm: Any, count: int) -> np.ndarray:
    """The logits of the last ``count`` outputs of the last decode, [count, n_vocab] (a copy)."""
    import llama_cpp

    n_vocab = llm.n_vocab()
    out = np.empty((count, n_vocab), dtype=np.float32)
    for i in range(count):
        ptr = llama_cpp.llama_get_logits_ith(llm.ctx, i - count)
        if not ptr:
            raise EngineError("llama.cpp returned no logits for that position")
        out[i] = np.ctypeslib.as_array(ptr, shape=(n_vocab,))
    return out


def token_embedding_rows(gguf_path: Path | str, ids: np.ndarray | list[int]) -> np.ndarray:
    """Rows of a model file's ``token_embd`` table as float32 (dequantized), not yet scaled.

    Reads only the requested rows. Gemma models multiply looked-up rows by ``sqrt(n_embd)``; see
    :func:`gemma_input_scale`.
    """
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType
    from gguf.quants import dequantize

    from g3chat.core.gguf_file import inspect_gguf

    summary = inspect_gguf(gguf_path)
    info = next((t for t in summary.tensors if t.name == "token_embd.weight"), None)
    if info is None:
        raise EngineError(f"{gguf_path}: no token_embd.weight tensor")
    n_embd = info.shape[0]
    block, size = GGML_QUANT_SIZES[GGMLQuantizationType(info.ggml_type)]
    row_bytes = n_embd // block * size
    data = np.memmap(gguf_path, dtype=np.uint8, mode="r")
    base = summary.data_offset + info.offset
    raw = np.stack([np.asarray(data[base + i * row_bytes : base + (i + 1) * row_bytes]) for i in ids])
    return np.asarray(dequantize(raw, GGMLQuantizationType(info.ggml_type)), dtype=np.float32).reshape(
        len(raw), n_embd
    )


def gemma_input_scale(n_embd: int) -> np.float32:
    """The factor Gemma's graphs apply to looked-up token embeddings (``sqrtf(n_embd)`` in float32)."""
    return np.float32(math.sqrt(n_embd))
