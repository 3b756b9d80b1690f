"""Gemma 3n's own vision through the engine: a converter-made MobileNetV5 (``gemma3nv``) projector.

The projector (tests/fixtures/vision/tiny-gemma3n-vision-mmproj.gguf) is llama.cpp's converter's output for a
reduced MobileNetV5 tower with seeded random weights, and gemma3n_vision.npz holds what transformers'
Gemma 3n vision path gives for two 768x768 pictures (both written by tests/fixtures/make_gemma3n_vision.py).
The text side is the tiny Gemma 3n with its image tokens named (tests/fixtures/tiny_gemma3n_chat.py):
mtmd refuses a projector whose width differs from the text model's.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from g3chat.core.engine.embeddings import logits_rows
from g3chat.core.engine.kv import KVSession
from g3chat.core.engine.llama import LlamaCppEngine
from g3chat.core.engine.projector import MediaChunk
from g3chat.core.errors import ModelFileError
from g3chat.core.media.images import attach_image
from g3chat.core.media.store import MediaStore
from g3chat.core.types import AttachmentPart, GenerationParams, Message, collect, user
from tests.conftest import FIXTURES
from tests.fixtures.gemma3n_vision import SOFT_TOKENS, TINY, pattern_image
from tests.fixtures.tiny_gemma3n_chat import tiny_chat_model

VISION = FIXTURES / "vision"
MMPROJ = VISION / "tiny-gemma3n-vision-mmproj.gguf"
SOFT, BOI, EOI = 65, 62, 64  # the tiny vocabulary's <image_soft_token>, <start_of_image>, <end_of_image>
# ggml's CPU backend rounds GELU's input to float16 and multiplies F16 weights with float16 activations:
# against transformers in float32 the 256 x 32 embeddings (of magnitude up to 2.5) differ by at most 3.0e-3,
# against the reference with ggml's GELU rounding by 2.1e-3.
TOLERANCE = 5e-3
TEXT = "the keeper"  # the tiny vocabulary: lower-case letters but w and y, spaces, full stops


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(VISION / "gemma3n_vision.npz") as data:
        return dict(data)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaCppEngine]:
    work = tmp_path_factory.mktemp("gemma3n-vision")
    model = tiny_chat_model(work / "tiny-gemma3n-vision.gguf", vision=True)
    eng = LlamaCppEngine(
        model, n_ctx=1024, n_threads=2, flash_attn=False, mmproj=MMPROJ, state_memory_mb=0, state_dir=None
    )
    eng.load()
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> dict[int, AttachmentPart]:
    from PIL import Image

    work = tmp_path_factory.mktemp("pictures")
    store = MediaStore(work / "media")
    out = {}
    for seed in (1, 2):
        path = work / f"pattern-{seed}.png"
        Image.fromarray(pattern_image(seed)).save(path)
        out[seed] = attach_image(store, path)
    return out


def encode(engine: LlamaCppEngine, part: AttachmentPart) -> np.ndarray:
    """[256, n_embd]: mtmd's embeddings of the picture (vision tower and projection), as the engine's
    projector tokenized it."""
    import llama_cpp.mtmd_cpp as mtmd

    projector = engine._projector
    assert projector is not None
    [chunk] = [p for p in projector.tokenize(part).pieces if isinstance(p, MediaChunk)]
    assert mtmd.mtmd_encode_chunk(projector._ctx, ctypes.c_void_p(chunk.pointer)) == 0
    n_embd = engine.llama.n_embd()
    out = np.ctypeslib.as_array(mtmd.mtmd_get_output_embd(projector._ctx), shape=(chunk.n_tokens * n_embd,))
    return out.reshape(chunk.n_tokens, n_embd).copy()


def next_token_logits(engine: LlamaCppEngine, messages: list[Message]) -> np.ndarray:
    KVSession(engine.llama).truncate(0)
    list(engine._prefill(engine.plan(messages), None))
    return logits_rows(engine.llama, 1)[0]


def test_the_converter_made_projector_loads(engine: LlamaCppEngine) -> None:
    info = engine.info
    assert info is not None and info.vision and info.projector == MMPROJ.name
    assert engine._projector is not None and engine._projector.projector_type == "gemma3nv"
    assert engine.llama.n_embd() == TINY.text_hidden


def test_an_image_is_laid_out_as_gemma3n_processor_does(
    engine: LlamaCppEngine, pictures: dict[int, AttachmentPart], reference: dict[str, np.ndarray]
) -> None:
    """Gemma 3n's chat template writes ``<image_soft_token>`` for the image and Gemma3nProcessor replaces
    it with a blank line, ``<start_of_image>``, 256 soft tokens, ``<end_of_image>`` and a blank line."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    template = (FIXTURES / "gemma3n_template.jinja").read_text()
    content = [{"type": "image"}, {"type": "text", "text": TEXT}]
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    rendered = env.from_string(template).render(
        messages=[{"role": "user", "content": content}], add_generation_prompt=True, bos_token="<bos>"
    )
    text = rendered.replace("<bos>", "").replace("<image_soft_token>", str(reference["image_sequence"]))
    want = [2, *engine.llama.tokenize(text.encode(), add_bos=False, special=True)]
    assert want.count(SOFT) == SOFT_TOKENS
    plan = engine.plan([user(TEXT, [pictures[1]])])
    [(start, end)] = plan.spans
    assert end - start == SOFT_TOKENS and plan.tokens[start - 1] == BOI and plan.tokens[end] == EOI
    got = [SOFT if start <= i < end else t for i, t in enumerate(plan.tokens)]
    assert got == want


def test_image_embeddings_match_transformers(
    engine: LlamaCppEngine, pictures: dict[int, AttachmentPart], reference: dict[str, np.ndarray]
) -> None:
    for seed in (1, 2):
        got = encode(engine, pictures[seed])
        assert got.shape == (SOFT_TOKENS, TINY.text_hidden)
        assert float(np.abs(got - reference[f"embeddings_{seed}"]).max()) <= TOLERANCE
        assert float(np.abs(got - reference[f"embeddings_{seed}_fp16_gelu"]).max()) <= TOLERANCE
    # the pictures differ far beyond the tolerance, so matching the right one is not an accident
    assert float(np.abs(reference["embeddings_1"] - reference["embeddings_2"]).max()) > 100 * TOLERANCE


def test_two_images_give_different_next_token_logits(
    engine: LlamaCppEngine, pictures: dict[int, AttachmentPart]
) -> None:
    first = next_token_logits(engine, [user(TEXT, [pictures[1]])])
    second = next_token_logits(engine, [user(TEXT, [pictures[2]])])
    assert float(np.abs(first - second).max()) > 1e-2
    # and a reply to the second picture reuses its keys and values: nothing is encoded again
    greedy = GenerationParams(temperature=0, max_tokens=2)
    result = collect(engine.stream_chat([user(TEXT, [pictures[2]])], greedy))
    assert result.error is None and result.usage is not None and result.usage.completion_tokens == 2
    assert result.usage.prompt_eval_tokens <= 1


def altered_copy(dst: Path, flat_scales: bool = False, f32_depthwise: bool = False) -> Path:
    """The projector with its layer scales stored flat ([C]) or its depthwise kernels as F32."""
    import gguf

    reader = gguf.GGUFReader(str(MMPROJ))
    writer = gguf.GGUFWriter(str(dst), arch="clip")
    for name, field in reader.fields.items():
        if not name.startswith("GGUF.") and name != "general.architecture":
            sub = field.types[1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
            writer.add_key_value(name, field.contents(), field.types[0], sub_type=sub)
    for t in reader.tensors:
        data = np.array(t.data).reshape([int(d) for d in reversed(t.shape)])
        if flat_scales and t.name.endswith("layer_scale.gamma"):
            data = data.reshape(-1)
        if f32_depthwise and t.name.endswith(
            ("dw_start.conv.weight", "dw_mid.conv.weight", "down_conv.weight")
        ):
            data = data.astype(np.float32)
        writer.add_tensor(t.name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return dst


@pytest.mark.parametrize(
    ("change", "reason"),
    [({"flat_scales": True}, "layer scales are stored flat"), ({"f32_depthwise": True}, "are F32")],
)
def test_a_projector_llama_cpp_would_abort_on_is_refused_at_load(
    engine: LlamaCppEngine, tmp_path: Path, change: dict[str, bool], reason: str
) -> None:
    """llama.cpp 0.3.36 aborts the whole process on the first image with either (a failed ggml assertion):
    the engine refuses such a projector when loading, with the reason."""
    bad = altered_copy(tmp_path / "mmproj-bad.gguf", **change)
    other = LlamaCppEngine(
        engine.model_path, n_ctx=512, n_threads=2, mmproj=bad, state_memory_mb=0, state_dir=None
    )
    with pytest.raises(ModelFileError, match=reason) as info:
        other.load()
    assert "llama.cpp would abort on this Gemma 3n projector" in str(info.value)
