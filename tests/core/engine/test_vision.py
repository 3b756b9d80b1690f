"""The vision path for real: llama.cpp's mtmd with a tiny random-weight Gemma 3 projector on the test model.

The projector (tests/fixtures/tiny_mmproj.py) is generated at test time. Most tests use a 4×4-patch one
(16 tokens per image) to stay fast on two cores; one CLI test uses the 256-token geometry Gemma 3n has.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from g3chat.core.engine.llama import LlamaCppEngine
from g3chat.core.media.images import attach_image
from g3chat.core.media.store import MediaStore
from g3chat.core.types import GenerationParams, assistant, collect, user
from tests.conftest import TEST_CTX, TEST_THREADS, run_cli
from tests.fixtures import media_files as mf
from tests.fixtures.tiny_mmproj import write_tiny_mmproj

pytestmark = pytest.mark.model
GREEDY = GenerationParams(temperature=0, max_tokens=2)
SIDE = 4  # 16 tokens per image


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vision")


@pytest.fixture(scope="module")
def vision_engine(test_model_path: Path, media_dir: Path) -> Iterator[LlamaCppEngine]:
    mmproj = write_tiny_mmproj(media_dir / "mmproj-tiny.gguf", side=SIDE)
    eng = LlamaCppEngine(
        test_model_path, n_ctx=TEST_CTX, n_threads=TEST_THREADS, flash_attn=False, mmproj=mmproj
    )
    eng.load()
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def pictures(media_dir: Path) -> dict[str, object]:
    store = MediaStore(media_dir / "media")
    return {
        name: attach_image(store, mf.image(media_dir / f"{name}.png", "PNG", color=color))
        for name, color in (("red", mf.RED), ("blue", mf.BLUE))
    }


def test_projector_loads_with_vision(vision_engine: LlamaCppEngine) -> None:
    info = vision_engine.info
    assert info is not None and info.vision and not info.audio and info.projector == "mmproj-tiny.gguf"


def test_image_tokens_enter_the_context_and_generation_completes(vision_engine, pictures) -> None:
    question = [user("What is this?", [pictures["red"]])]
    text_only = vision_engine.count_tokens([user("What is this?")])
    with_image = vision_engine.count_tokens(question)
    # 16 image positions + <start_of_image> + <end_of_image> + the "\n\n" between image and text
    assert with_image - text_only == SIDE * SIDE + 3
    result = collect(vision_engine.stream_chat(question, GREEDY))
    assert result.finish_reason in ("stop", "length") and result.error is None
    assert result.usage.prompt_tokens == with_image
    cached = vision_engine.cached_tokens()
    placeholders = [t for t in cached if t < 0]
    assert len(placeholders) == SIDE * SIDE  # the image's positions are in the KV cache


def test_text_turn_after_an_image_reuses_the_cache(vision_engine, pictures) -> None:
    first = [user("Describe it.", [pictures["red"]])]
    answer = collect(vision_engine.stream_chat(first, GREEDY))
    follow = [*first, assistant(answer.text), user("Shorter?")]
    again = collect(vision_engine.stream_chat(follow, GREEDY))
    assert again.error is None
    new_tokens = again.usage.prompt_tokens - answer.usage.prompt_tokens
    assert again.usage.prompt_eval_tokens <= new_tokens + 1  # the image was not evaluated again


def test_a_different_image_at_the_same_place_is_evaluated(vision_engine, pictures) -> None:
    red = collect(vision_engine.stream_chat([user("Colour?", [pictures["red"]])], GREEDY))
    blue = collect(vision_engine.stream_chat([user("Colour?", [pictures["blue"]])], GREEDY))
    assert blue.error is None and red.usage.prompt_tokens == blue.usage.prompt_tokens
    assert blue.usage.prompt_eval_tokens >= SIDE * SIDE + 2  # from <start_of_image> on
    same = collect(vision_engine.stream_chat([user("Colour?", [pictures["blue"]])], GREEDY))
    assert same.usage.prompt_eval_tokens <= 2


def test_reuse_never_ends_inside_a_media_chunk(vision_engine, pictures) -> None:
    """A prompt that agrees with the cache only part-way into an image keeps the cache up to the image."""
    plan = vision_engine.plan([user("Look.", [pictures["red"]])])
    collect(vision_engine.stream_chat([user("Look.", [pictures["red"]])], GREEDY))
    start, _end = plan.spans[0]
    forged = [*plan.tokens[: start + 5], 1000, *plan.tokens[start + 6 :]]
    kv = vision_engine._kv
    assert kv.prepare(forged, plan.spans) == start
    assert vision_engine.cached_tokens() == plan.tokens[:start]


def test_saved_state_brings_the_image_back(vision_engine, pictures) -> None:
    # long enough that switching away saves it (see kv.MIN_RESTORE_GAIN)
    chat_a = [
        user("Remember this picture please, and the colours in it, for later. " * 3, [pictures["blue"]])
    ]
    # one token: the cache then holds exactly chat A's prompt, a prefix of its follow-up
    first = collect(vision_engine.stream_chat(chat_a, GenerationParams(temperature=0, max_tokens=1)))
    long_b = [user("An unrelated question about rivers and lakes, " * 8)]
    collect(vision_engine.stream_chat(long_b, GREEDY))  # the live cache now holds chat B
    follow = [*chat_a, assistant(first.text), user("And?")]
    back = collect(vision_engine.stream_chat(follow, GREEDY))
    assert back.usage.restored_tokens >= SIDE * SIDE
    assert back.usage.prompt_eval_tokens < SIDE * SIDE


def test_no_projector_keeps_the_image_as_a_note(engine, pictures) -> None:
    """The plain test model: images are refused with the clear message and reach the model as a note."""
    problem = engine.media_problem(pictures["red"])
    assert problem is not None and problem.reason == "this model has no vision projector"
    tokens = engine.tokenize_prompt([user("What is this?", [pictures["red"]])])
    assert all(t >= 0 for t in tokens)
    # where the image would be, with the blank lines around it
    note = "[image red.png: not available to this model]"
    text = f"<start_of_turn>user\n\n\n{note}\n\nWhat is this?<end_of_turn>\n<start_of_turn>model\n"
    assert tokens == [2, *engine.llama.tokenize(text.encode(), add_bos=False, special=True)]


def test_ask_image_end_to_end_with_256_token_projector(cli_env, tmp_path: Path) -> None:
    mmproj = write_tiny_mmproj(tmp_path / "mmproj-256.gguf")
    picture = mf.image(tmp_path / "cat.png", "PNG", size=(120, 90))
    proc = run_cli(
        "ask", "--image", str(picture), "--mmproj", str(mmproj), "What is this?", "-n", "2",
        "--temperature", "0", "--json", env=cli_env, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    text_only = run_cli("ask", "What is this?", "-n", "1", "--json", "--no-save", env=cli_env)
    base = json.loads(text_only.stdout)["usage"]["prompt_tokens"]
    assert payload["usage"]["prompt_tokens"] - base == 256 + 3
    assert payload["finish_reason"] in ("stop", "length")
    [attachment] = payload["attachments"]
    assert (
        attachment["name"] == "cat.png" and attachment["width"] == 120 and Path(attachment["path"]).is_file()
    )
    export = run_cli("chats", "export", str(payload["conversation_id"]), "--format", "json", env=cli_env)
    content = json.loads(export.stdout)["messages"][0]["content"]
    assert content[0]["type"] == "image" and content[0]["sha256"] == attachment["sha256"]
    assert content[1] == {"type": "text", "text": "What is this?"}


def test_ask_image_without_projector_explains_and_keeps_it(cli_env, tmp_path: Path) -> None:
    picture = mf.image(tmp_path / "cat.png", "PNG")
    proc = run_cli("ask", "--image", str(picture), "What is this?", env=cli_env)
    assert proc.returncode == 2
    assert "this model has no vision projector: cat.png is kept in the conversation" in proc.stderr
    assert "--mmproj" in proc.stderr and "Traceback" not in proc.stderr
    export = run_cli("chats", "export", "1", "--format", "json", env=cli_env)
    [message] = json.loads(export.stdout)["messages"]
    assert message["role"] == "user" and message["content"][0]["name"] == "cat.png"
    later = run_cli("ask", "-c", "Hello again", "-n", "2", env=cli_env)  # history with the image still works
    assert later.returncode == 0, later.stderr
