"""bench/e2b_model.py and bench/_models.py: the Gemma 3n-shaped models' layout, checked without building GBs.

The toy-width variant keeps every tensor name and type of the E2B layout (llama.cpp hard-codes the sizes
it could not shrink); it is written, quantized by llama.cpp's own quantizer and loaded by llama.cpp here,
so the layout the full build relies on is checked against the real loader and quantizer in seconds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

sys.path.append(str(REPO / "bench"))  # appended: bench/'s script names must not shadow anything

import e2b_model
from _gemma3n_layout import E2B, E4B, keeps_source_type, tensor_plan
from _models import MODELS_ENV, resolve_model, shaped_file

from g3chat.core.gguf_file import inspect_gguf

GEMMA_VOCAB = 262_144
TINY = E2B.tiny()


@pytest.fixture(scope="module")
def tiny_models(test_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("shaped")
    return e2b_model.build(TINY, ["Q4_K_M", "Q8_0"], out, vocab_from=test_model_path, log=lambda _: None)


def test_tiny_variant_has_the_full_layouts_names_and_types() -> None:
    full, tiny = tensor_plan(E2B, GEMMA_VOCAB), tensor_plan(TINY, 1024)
    layout = [(s.name, s.ggml_type, len(s.ne)) for s in full]
    assert [(s.name, s.ggml_type, len(s.ne)) for s in tiny] == layout
    # rows of a multiple of 256 in both: the quantizer's choice of type does not change with the width
    for small, big in zip(tiny, full):
        if not keeps_source_type(big):
            assert small.ne[0] % 256 == 0 and big.ne[0] % 256 == 0, small.name
    assert len(full) == 6 + 24 * 30 + 1
    assert len(tensor_plan(E4B, GEMMA_VOCAB)) == 6 + 24 * 35 + 1


def test_full_e2b_q8_0_tensor_data_matches_the_published_file_up_to_its_header() -> None:
    data = e2b_model.q8_0_tensor_bytes(tensor_plan(E2B, GEMMA_VOCAB))
    header = e2b_model.PUBLISHED["E2B", "Q8_0"] - data
    assert 6_000_000 < header < 7_000_000  # Gemma's vocabulary, scores and token types are about 6.5 MB


def test_quantized_q8_0_has_the_predicted_types_and_size(tiny_models: dict[str, Path]) -> None:
    plan = tensor_plan(TINY, 1024)
    summary = inspect_gguf(tiny_models["Q8_0"])
    types = {t.name: e2b_model.type_name(t.ggml_type) for t in summary.tensors}
    assert types == e2b_model.expected_types(plan, "Q8_0")
    assert summary.file_size - summary.data_offset == e2b_model.q8_0_tensor_bytes(plan)
    assert e2b_model.check_size(tiny_models["Q8_0"], TINY, "Q8_0") == []


def test_quantized_q4_k_m_loads_as_gemma3n_and_decodes(tiny_models: dict[str, Path]) -> None:
    import llama_cpp

    path = tiny_models["Q4_K_M"]
    summary = inspect_gguf(path)
    plan = {s.name: s for s in tensor_plan(TINY, 1024)}
    assert {t.name for t in summary.tensors} == set(plan)
    for t in summary.tensors:
        kept = keeps_source_type(plan[t.name])
        assert (e2b_model.type_name(t.ggml_type) == plan[t.name].ggml_type.name) == kept, t.name
    assert summary.get("gemma3n.attention.shared_kv_layers") == 10
    assert summary.get("general.file_type") == 15  # LLAMA_FTYPE_MOSTLY_Q4_K_M

    # g3chat's context settings; one thread, which a busy machine slows least (no barrier to wait at)
    llm = llama_cpp.Llama(str(path), n_ctx=256, n_threads=1, flash_attn=True, swa_full=True, verbose=False)
    try:
        assert llm.metadata["general.architecture"] == "gemma3n"
        assert llama_cpp.llama_model_n_layer(llm.model) == 30
        assert llm.n_vocab() == 1024
        tokens = llm.tokenize(b"<start_of_turn>user\nhello<end_of_turn>", add_bos=True, special=True)
        assert tokens[:2] == [2, 105]  # <bos> <start_of_turn>: Gemma's own ids
        llm.eval(tokens)
        llm.eval([1])
        assert llm.n_tokens == len(tokens) + 1
    finally:
        llm.close()


def test_resolve_model_shorthands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODELS_ENV, str(tmp_path))
    with pytest.raises(SystemExit, match=r"missing: build it with `python bench/e2b_model.py`"):
        resolve_model("e2b-q4")
    with pytest.raises(SystemExit, match=r"--shape E4B"):
        resolve_model("e4b-q8")
    built = shaped_file("E2B", "Q8_0")
    assert built == tmp_path / "gemma-3n-E2B-shaped-Q8_0.gguf"
    built.write_bytes(b"GGUF")
    assert resolve_model("E2B-Q8") == built
    assert resolve_model(str(built)) == built
    with pytest.raises(SystemExit, match="no such model file"):
        resolve_model(tmp_path / "nope.gguf")
