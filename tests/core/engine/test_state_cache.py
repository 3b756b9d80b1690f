"""Saved KV states: the two-tier cache itself, and continuing conversations without re-reading history."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from g3chat.core.engine.llama import LlamaCppEngine
from g3chat.core.engine.state_cache import SUFFIX, StateCache
from g3chat.core.types import GenerationParams, assistant, collect, user
from tests.conftest import run_cli

LONG = " ".join(f"Note {i}: the keeper logged the weather, the ships and the gulls." for i in range(40))


def test_best_prefix_match_memory_and_disk(tmp_path: Path) -> None:
    cache = StateCache("model-a", tmp_path, min_disk_tokens=3)
    cache.put([1, 2, 3, 4], b"state-1234", to_disk=True)
    cache.put([1, 2, 3, 4, 5, 6], b"state-123456")
    assert cache.best([1, 2, 3, 4, 5, 6, 7]).payload == b"state-123456"
    assert cache.best([1, 2, 3, 4, 9]).payload == b"state-1234"
    assert cache.best([1, 2, 3, 4, 9], at_least=4) is None
    assert cache.best([9, 9]) is None
    # A new process (a new cache object) finds only what went to disk.
    fresh = StateCache("model-a", tmp_path, min_disk_tokens=3)
    assert fresh.best([1, 2, 3, 4, 5, 6, 7]).payload == b"state-1234"
    # Other model or settings: never offered.
    assert StateCache("model-b", tmp_path).best([1, 2, 3, 4, 5]) is None


def test_corrupt_and_truncated_files_are_removed(tmp_path: Path) -> None:
    cache = StateCache("m", tmp_path, min_disk_tokens=1)
    cache.put([1, 2], b"x" * 1000, to_disk=True)
    cache.put([5, 6], b"y" * 1000, to_disk=True)
    files = sorted(tmp_path.glob(f"*{SUFFIX}"))
    assert len(files) == 2
    data = bytearray(files[0].read_bytes())
    data[-10] ^= 0xFF  # flip a payload byte: the checksum no longer matches
    files[0].write_bytes(bytes(data))
    files[1].write_bytes(files[1].read_bytes()[:-100])  # truncated
    fresh = StateCache("m", tmp_path)
    assert fresh.best([1, 2, 3]) is None and fresh.best([5, 6, 7]) is None
    assert not list(tmp_path.glob(f"*{SUFFIX}"))
    (tmp_path / f"{fresh.key_digest}-junk{SUFFIX}").write_bytes(b"not a state")
    assert StateCache("m", tmp_path).best([1]) is None and not list(tmp_path.glob(f"*{SUFFIX}"))


def test_budgets_evict_least_recently_used(tmp_path: Path) -> None:
    cache = StateCache("m", tmp_path, memory_budget=2500, disk_budget=2500, min_disk_tokens=1)
    cache.put([0, 0], bytes(1000), to_disk=True)
    os.utime(next(tmp_path.glob(f"*{SUFFIX}")), (1, 1))  # clearly the least recently used file
    for n in (1, 2):
        cache.put([n, n], bytes(1000), to_disk=True)
    assert cache.best([0, 0, 1]) is None  # oldest: gone from memory and from disk
    assert cache.best([2, 2, 1]) is not None
    assert len(list(tmp_path.glob(f"*{SUFFIX}"))) == 2


def _engine(path: Path, state_dir: Path) -> LlamaCppEngine:
    eng = LlamaCppEngine(path, n_ctx=2048, n_threads=2, flash_attn=False, state_dir=state_dir)
    eng.load()
    return eng


@pytest.mark.model
def test_new_process_continues_from_the_saved_state(test_model_path: Path, tmp_path: Path) -> None:
    history = [user(LONG + " Summarise the log.")]
    greedy = GenerationParams(temperature=0, max_tokens=8)
    first = _engine(test_model_path, tmp_path)
    try:
        answer = collect(first.stream_chat(history, greedy))
        assert answer.usage.prompt_tokens > 256 and list(tmp_path.glob(f"*{SUFFIX}"))
        shutil.copytree(tmp_path, tmp_path / "after-turn-1", ignore=shutil.ignore_patterns("after-*"))
        follow_up = [*history, assistant(answer.text), user("And the gulls?")]
        live = collect(first.stream_chat(follow_up, greedy))  # continuing in the same process
    finally:
        first.close()
    second = _engine(test_model_path, tmp_path / "after-turn-1")  # as a new `g3chat ask -c` would
    try:
        resumed = collect(second.stream_chat(follow_up, greedy))
    finally:
        second.close()
    assert resumed.usage.restored_tokens >= answer.usage.prompt_tokens
    assert resumed.usage.prompt_eval_tokens == live.usage.prompt_eval_tokens < 40  # only the new turn
    # The restored keys and values are the very ones the first process had: the same answer, bit for bit.
    assert resumed.text == live.text


@pytest.mark.model
def test_switching_conversations_restores_from_memory(test_model_path: Path, tmp_path: Path) -> None:
    eng = LlamaCppEngine(test_model_path, n_ctx=2048, n_threads=2, flash_attn=False, state_dir=None)
    eng.load()
    try:
        a = [user(LONG + " Question A?")]
        b = [user("A completely different conversation about cooking pasta.")]
        first_a = collect(eng.stream_chat(a, GenerationParams(temperature=0, max_tokens=4)))
        collect(eng.stream_chat(b, GenerationParams(temperature=0, max_tokens=4)))
        back = [*a, assistant(first_a.text), user("More on A?")]
        again = collect(eng.stream_chat(back, GenerationParams(temperature=0, max_tokens=4)))
        assert again.usage.restored_tokens >= first_a.usage.prompt_tokens
        assert again.usage.prompt_eval_tokens < 30
    finally:
        eng.close()


@pytest.mark.model
def test_ask_continue_in_a_new_process_skips_history(cli_env: dict[str, str]) -> None:
    first = run_cli("ask", "--json", "-n", "4", "--temperature", "0", LONG, env=cli_env)
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    assert data["usage"]["prompt_tokens"] > 256
    second = json.loads(run_cli("ask", "--json", "-n", "4", "-c", "next?", env=cli_env).stdout)
    assert second["conversation_id"] == data["conversation_id"]
    assert second["usage"]["prompt_eval_tokens"] < 40 < second["usage"]["prompt_tokens"]
