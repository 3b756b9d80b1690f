"""Embeddings into llama.cpp: a model's own token embeddings reproduce its token logits, and Gemma 3n's
audio path (encoder -> embed_audio -> padding -> <end_of_audio>) matches transformers end to end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from g3chat.core.audio.config import AudioConfig
from g3chat.core.audio.encoder import AudioEncoder
from g3chat.core.audio.layout import AudioTokens, clip_rows, split_prompt
from g3chat.core.audio.weights import load_audio_weights
from g3chat.core.engine.embeddings import (
    decode_embeddings,
    gemma_input_scale,
    logits_rows,
    token_embedding_rows,
)
from g3chat.core.engine.kv import KVSession
from tests.conftest import FIXTURES as ALL_FIXTURES

FIXTURES = ALL_FIXTURES / "audio"
TINY = FIXTURES / "tiny-gemma3n.gguf"
TINY_TOKENS = AudioTokens(boa=63, eoa=72, soft=73)
INJECTION_TOLERANCE = 1e-3  # the target for logits from injected embeddings


@pytest.fixture
def llm(engine: Any) -> Iterator[Any]:
    """The session's test model (Gemma 3 270M), its KV cache emptied before and after."""
    llama = engine.llama
    kv = KVSession(llama)
    kv.truncate(0)
    yield llama
    kv.truncate(0)


@pytest.mark.model
def test_own_token_embeddings_reproduce_token_logits(llm: Any, test_model_path: Path) -> None:
    ids = llm.tokenize(b"The keeper found a bottle on the shore.", add_bos=True)
    kv = KVSession(llm)
    kv.decode(ids, all_logits=True)
    expected = logits_rows(llm, len(ids))
    kv.truncate(0)
    table = token_embedding_rows(test_model_path, ids)
    rows = table * gemma_input_scale(table.shape[1])
    decode_embeddings(llm, rows, ids=ids, all_logits=True)
    got = logits_rows(llm, len(ids))
    assert float(np.abs(got - expected).max()) <= INJECTION_TOLERANCE
    assert llm.n_tokens == len(ids) and list(llm.input_ids[: len(ids)]) == ids
    # rows are taken as they are: without Gemma's sqrt(n_embd) the model sees something else entirely
    kv.truncate(0)
    decode_embeddings(llm, table, ids=ids, all_logits=True)
    assert float(np.abs(logits_rows(llm, len(ids)) - expected).max()) > 1.0


@pytest.mark.model
def test_token_and_embedding_batches_interleave(llm: Any, test_model_path: Path) -> None:
    """Tokens, then rows, then tokens again, against the same three batches all as tokens (llama.cpp's
    quantized kernels depend on the batch size, so the baseline is cut the same way)."""
    ids = llm.tokenize(b"Once upon a time, by the sea, there lived", add_bos=True)
    cuts = [(0, 3), (3, 7), (7, len(ids))]
    kv = KVSession(llm)
    expected = []
    for a, b in cuts:
        kv.decode(ids[a:b], all_logits=True)
        expected.append(logits_rows(llm, b - a))
    kv.truncate(0)
    rows = token_embedding_rows(test_model_path, ids[3:7]) * gemma_input_scale(llm.n_embd())
    kv.decode(ids[:3], all_logits=True)
    got = [logits_rows(llm, 3)]
    decode_embeddings(llm, rows, ids=ids[3:7])  # logits only for its last row
    got.append(logits_rows(llm, 1))
    kv.decode(ids[7:], all_logits=True)
    got.append(logits_rows(llm, len(ids) - 7))
    want = [expected[0], expected[1][-1:], expected[2]]
    assert float(np.abs(np.concatenate(got) - np.concatenate(want)).max()) <= INJECTION_TOLERANCE
    # the cache holds the same ids as after a token prompt: a follow-up reuses all of it
    assert KVSession(llm).common_prefix([*ids, 42]) == len(ids)


# ------------------------------------------------------------------------------------ tiny Gemma 3n


@pytest.fixture(scope="module")
def tiny() -> Iterator[Any]:
    import llama_cpp

    from g3chat.core.engine.native_log import native_log

    native_log.install(verbose=False)
    model = llama_cpp.Llama(
        str(TINY), n_ctx=128, n_batch=64, n_ubatch=64, n_threads=2, type_k=0, type_v=0, verbose=False
    )  # F32 KV cache: the comparison with transformers is not about cache precision
    yield model
    model.close()


@pytest.fixture(scope="module")
def tiny_ref() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "tiny_gemma3n.npz") as data:
        return dict(data)


@pytest.fixture(scope="module")
def tiny_rows() -> np.ndarray:
    from tests.fixtures.tiny_gemma3n_reference import speech_clip

    weights = load_audio_weights(
        FIXTURES / "tiny-gemma3n-mmproj.gguf", AudioConfig(vocab_offset=72, soft_tokens=24)
    )
    return clip_rows(AudioEncoder(weights.config, weights.tensors), speech_clip(), eoa=TINY_TOKENS.eoa)


def run_prompt(llm: Any, ids: list[int], clips: list[np.ndarray], start: int = 0) -> np.ndarray:
    """Logits at every position from ``start`` on, decoding token runs as tokens and clips as rows."""
    kv = KVSession(llm)
    kv.truncate(start)
    out = []
    for run in split_prompt(ids, clips, TINY_TOKENS, start=start):
        if run.rows is None:
            kv.decode(list(run.ids), all_logits=True)
        else:
            decode_embeddings(llm, run.rows, ids=run.ids, all_logits=True)
        out.append(logits_rows(llm, len(run.ids)))
    return np.concatenate(out)


def test_tiny_gemma3n_text_logits_match_transformers(tiny: Any, tiny_ref: dict[str, np.ndarray]) -> None:
    got = run_prompt(tiny, tiny_ref["text_ids"].tolist(), [])
    # ggml's CPU GELU is a float16 table lookup: against transformers with GELU rounded the same way the
    # rest of the graph agrees to float32 noise; against exact GELU, to that table's precision
    assert float(np.abs(got - tiny_ref["text_logits_fp16_gelu"]).max()) <= 5e-3
    assert float(np.abs(got - tiny_ref["text_logits"]).max()) <= 3e-2


def test_tiny_gemma3n_audio_prompt_matches_transformers(
    tiny: Any, tiny_ref: dict[str, np.ndarray], tiny_rows: np.ndarray
) -> None:
    ids = tiny_ref["audio_ids"].tolist()
    got = run_prompt(tiny, ids, [tiny_rows])
    scale = float(np.abs(tiny_ref["audio_logits"]).max())
    assert got.shape == tiny_ref["audio_logits"].shape and scale > 5
    assert float(np.abs(got - tiny_ref["audio_logits_fp16_gelu"]).max()) <= 5e-3
    assert float(np.abs(got - tiny_ref["audio_logits"]).max()) <= 3e-2


def test_tiny_gemma3n_end_of_audio_must_be_an_embedding(
    tiny: Any, tiny_ref: dict[str, np.ndarray], tiny_rows: np.ndarray
) -> None:
    """Fed as a token, <end_of_audio> gets the text table's row and its own per-layer row, not what
    transformers uses (embed_audio's, and the padding row): the logits after it go wrong."""
    ids = tiny_ref["audio_ids"].tolist()
    eoa = ids.index(TINY_TOKENS.eoa)
    kv = KVSession(tiny)
    kv.truncate(0)
    kv.decode(ids[: eoa - 24], all_logits=True)
    decode_embeddings(tiny, tiny_rows[:-1], ids=ids[eoa - 24 : eoa])
    kv.decode(ids[eoa:], all_logits=True)
    wrong = logits_rows(tiny, len(ids) - eoa)
    assert float(np.abs(wrong - tiny_ref["audio_logits"][eoa:]).max()) > 1.0


def test_tiny_gemma3n_follow_up_reuses_the_audio_prefix(
    tiny: Any, tiny_ref: dict[str, np.ndarray], tiny_rows: np.ndarray
) -> None:
    """A later text turn evaluates only its new tokens; its logits equal a fresh evaluation's."""
    ids = tiny_ref["audio_ids"].tolist()
    follow_up = [*ids, 40, 41, 44, 9]
    fresh = run_prompt(tiny, follow_up, [tiny_rows])
    run_prompt(tiny, ids, [tiny_rows])
    reuse = KVSession(tiny).common_prefix(follow_up)
    assert reuse == len(ids)
    tail = run_prompt(tiny, follow_up, [tiny_rows], start=reuse)
    assert tail.shape[0] == 4
    assert float(np.abs(tail - fresh[len(ids) :]).max()) <= INJECTION_TOLERANCE


def _with_q8_0_per_layer_table(src: Path, dst: Path, dequantized: bool) -> Path:
    """A copy of ``src`` whose per-layer token table is Q8_0 (as in quantized Gemma 3n GGUFs), or holds
    exactly those Q8_0 values back in F32."""
    import gguf

    reader = gguf.GGUFReader(str(src))
    writer = gguf.GGUFWriter(str(dst), arch=reader.fields["general.architecture"].contents())
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        kind = field.types[0]
        sub = field.types[1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(name, field.contents(), kind, sub_type=sub)
    q8 = gguf.GGMLQuantizationType.Q8_0
    for tensor in reader.tensors:
        data = np.array(tensor.data).reshape([int(d) for d in reversed(tensor.shape)])
        if tensor.name != "per_layer_token_embd.weight":
            writer.add_tensor(tensor.name, data)
        elif dequantized:
            writer.add_tensor(tensor.name, gguf.quants.dequantize(gguf.quants.quantize(data, q8), q8))
        else:
            writer.add_tensor(tensor.name, gguf.quants.quantize(data, q8), raw_dtype=q8)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return dst


def test_tiny_gemma3n_quantized_per_layer_table(
    tmp_path: Path, tiny_ref: dict[str, np.ndarray], tiny_rows: np.ndarray
) -> None:
    """For embedding input llama.cpp reads the padding row of the per-layer table through a view and a
    cast; with the table quantized (real Gemma 3n GGUFs) the logits equal those of the same values in F32."""
    import llama_cpp

    logits = []
    for dequantized in (False, True):
        path = _with_q8_0_per_layer_table(TINY, tmp_path / f"tiny-{dequantized}.gguf", dequantized)
        model = llama_cpp.Llama(
            str(path), n_ctx=128, n_batch=64, n_ubatch=64, n_threads=2, type_k=0, type_v=0, verbose=False
        )
        try:
            logits.append(run_prompt(model, tiny_ref["audio_ids"].tolist(), [tiny_rows]))
        finally:
            model.close()
    assert float(np.abs(logits[0] - logits[1]).max()) <= INJECTION_TOLERANCE
