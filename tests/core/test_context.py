"""Fitting a conversation into the context window (headless; token counts from a simple counter)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

import pytest

from g3chat.core.context import answer_reserve, cut_points, fit_to_context, trim_slack
from g3chat.core.engine.base import Engine
from g3chat.core.types import (
    GenerationParams,
    Message,
    ToolCallPart,
    ToolResultPart,
    assistant,
    collect,
    system,
    user,
)


def words(messages: Sequence[Message]) -> int:
    return sum(len(m.text.split()) + 4 for m in messages)


def history(turns: int) -> list[Message]:
    out = [system("be brief")]
    for i in range(turns):
        out += [user(f"q{i} " + "x " * 10), assistant(f"a{i} " + "y " * 10)]
    return [*out, user("last question")]


def test_everything_kept_when_it_fits() -> None:
    msgs = history(2)
    fitted = fit_to_context(msgs, words, n_ctx=1000, reserve=100)
    assert fitted.messages == msgs and fitted.dropped == 0 and fitted.fits
    assert fitted.tokens == words(msgs)


def test_without_slack_only_what_is_needed_is_dropped() -> None:
    msgs = history(10)  # 6 + 10 * 30 + 6 = 312 "tokens"
    fitted = fit_to_context(msgs, words, n_ctx=200, reserve=50, slack=0)
    kept = fitted.messages
    assert kept[0].text == "be brief" and kept[-1].text == "last question"
    assert fitted.tokens == words(kept) <= 150
    assert fitted.fits and fitted.dropped > 0
    # Whole turns only: the first kept message after the system prompt is a question.
    assert kept[1].role == "user"
    # The kept messages are the tail of the history, and one more turn would overflow.
    first_kept = len(msgs) - (len(kept) - 1)
    assert kept[1:] == msgs[first_kept:] and fitted.dropped == first_kept - 1
    assert words([msgs[0], *msgs[first_kept - 2 :]]) > 150


def test_each_turn_is_counted_once_and_the_cut_found_by_bisection() -> None:
    calls: list[int] = []

    def counting(messages: Sequence[Message]) -> int:
        calls.append(len(messages))
        return words(messages)

    msgs = history(500)
    fitted = fit_to_context(msgs, counting, n_ctx=400, reserve=100)
    assert fitted.fits and fitted.dropped > 0
    turns = [n for n in calls if n <= 2]  # one turn on its own: a question and its answer
    assert len(turns) == 501  # 500 answered turns and the last question, each counted once
    assert len(calls) - len(turns) <= 12  # whole prompts: the history once, then a bisection
    # The next turn counts only its own new turns: the sizes are remembered for this count function.
    calls.clear()
    again = fit_to_context([*msgs, assistant("an answer"), user("next")], counting, n_ctx=400, reserve=100)
    assert again.dropped == fitted.dropped
    assert [n for n in calls if n <= 2] == [2, 1]  # the answered last turn and the new question


def test_a_single_turn_that_does_not_fit_is_kept_and_flagged() -> None:
    msgs = [system("s"), user("w " * 500)]
    fitted = fit_to_context(msgs, words, n_ctx=100, reserve=25)
    assert not fitted.fits and fitted.messages == msgs and fitted.dropped == 0


def test_answer_reserve() -> None:
    assert answer_reserve(8192, None) == 1024
    assert answer_reserve(2048, None) == 512
    assert answer_reserve(2048, 64) == 64
    assert answer_reserve(100, 500) == 99


def test_cut_points_schedule() -> None:
    # Turn sizes 40 each, step 100: the prefix holds 40, 80, 120 (>= 100), 160, 200 (>= 200), ...
    assert cut_points([40] * 9, 100) == [3, 5, 8]
    # A big turn passes several multiples at once: one cut point, and the next multiple after it.
    assert cut_points([10, 350, 10, 50, 10], 100) == [2, 4]
    assert cut_points([500], 100) == []  # a lone turn is never cut
    assert trim_slack(1000, 900) == 250 and trim_slack(1000, 300) == 150 and trim_slack(1000, -5) == 1


def conversation(rng: random.Random, turns: int) -> list[list[Message]]:
    """Turns of varied sizes (about 10 to 100 words); now and then an answer in two parts (a tool step)."""
    out = []
    for i in range(turns):
        turn = [user(f"q{i} " + "x " * rng.randint(5, 40))]
        turn.append(assistant(f"a{i} " + "y " * rng.randint(1, 40)))
        if rng.random() < 0.2:
            turn.append(assistant(f"b{i} " + "z " * rng.randint(1, 20)))
        out.append(turn)
    return out


def prompt_at(sys_prompt: Message, turns: list[list[Message]], t: int) -> list[Message]:
    """The prompt of turn ``t``, whose answer is still to come: the earlier turns and its question."""
    return [sys_prompt, *(m for turn in turns[:t] for m in turn), turns[t][0]]


def test_trims_are_rare_and_the_kept_beginning_stable() -> None:
    n_ctx, reserve = 2000, 200
    budget = n_ctx - reserve
    slack = trim_slack(n_ctx, budget)
    rng = random.Random(13)
    turns = conversation(rng, 200)
    big = max(words(turn) for turn in turns)  # the cut points fall within a turn of each multiple
    sys_prompt = system("be brief")
    first_kept: list[Message | None] = []
    grown_at_trim: list[int] = []
    for t in range(len(turns)):
        msgs = prompt_at(sys_prompt, turns, t)
        fitted = fit_to_context(msgs, words, n_ctx, reserve)
        kept = fitted.messages
        assert fitted.fits and fitted.tokens == words(kept) <= budget
        assert fitted.room == budget - fitted.tokens
        assert kept[0] == sys_prompt and kept[-1] == turns[t][0]  # system prompt and latest turn stay
        assert kept[1:] == msgs[1 + fitted.dropped :]  # a tail of the history ...
        assert kept[1].role == "user"  # ... made of whole turns: no answer without its question
        first = kept[1] if fitted.dropped else None
        if first_kept and first is not first_kept[-1]:
            # The beginning moves only when the previous one no longer fits ...
            previous = msgs.index(first_kept[-1]) if first_kept[-1] is not None else 1
            assert words([sys_prompt, *msgs[previous:]]) > budget
            # ... and then by about the slack: enough for several more turns.
            assert budget - fitted.tokens > slack - 2 * big  # less at most a turn or two
            grown_at_trim.append(words(msgs))
        first_kept.append(first)
    gaps = [b - a for a, b in itertools.pairwise(grown_at_trim)]
    assert len(grown_at_trim) >= 10  # the conversation is long enough to trim many times
    assert min(gaps) > slack - 2 * big  # at most one trim per slack's worth of growth
    assert sum(gaps) / len(gaps) >= 0.8 * slack
    changes = [t for t in range(1, len(first_kept)) if first_kept[t] is not first_kept[t - 1]]
    runs = [b - a for a, b in itertools.pairwise(changes)]
    assert min(runs) >= 3  # the same kept beginning for several consecutive turns after each trim
    # Without hysteresis, once full, nearly every turn moves the beginning.
    minimal = [
        fit_to_context(prompt_at(sys_prompt, turns, t), words, n_ctx, reserve, slack=0).dropped
        for t in range(len(turns))
    ]
    moves = sum(1 for a, b in itertools.pairwise(minimal) if a != b)
    assert moves > 3 * len(changes)


def test_a_big_answer_reserve_keeps_half_the_budget_as_history() -> None:
    msgs = history(60)  # 1812 "tokens"
    fitted = fit_to_context(msgs, words, n_ctx=1000, reserve=600)  # budget 400, slack capped at 200
    assert fitted.fits and 200 - 30 <= fitted.tokens <= 400 and fitted.cut > 0


def test_when_no_cut_point_fits_the_latest_turns_that_fit_are_kept() -> None:
    msgs = [system("s"), *history(12)[1:-1], user("w " * 200)]  # the last question nearly fills the budget
    fitted = fit_to_context(msgs, words, n_ctx=300, reserve=50)
    assert fitted.fits and fitted.cut == -1 and fitted.messages == [msgs[0], *msgs[-3:]]
    assert words([msgs[0], *msgs[-5:]]) > 250  # no more dropped than needed


def test_tool_steps_stay_with_their_question() -> None:
    """Tool results come back in a user message: that message continues its turn, it does not start one."""
    msgs = [system("s")]
    for i in range(12):
        call = Message("assistant", (ToolCallPart(f"c{i}", "read_file", {"path": f"f{i}.txt"}),))
        results = Message("user", (ToolResultPart(f"c{i}", "read_file", "text " * 20),))
        msgs += [user(f"question {i} " + "x " * 10), call, results, assistant(f"answer {i} " + "y " * 10)]
    msgs.append(user("last"))

    def count(messages: Sequence[Message]) -> int:
        return sum(4 + sum(len(str(p).split()) for p in m.parts) for m in messages)

    for n_ctx in range(150, 600, 25):
        fitted = fit_to_context(msgs, count, n_ctx, reserve=20)
        assert fitted.fits and fitted.dropped > 0
        assert fitted.messages[1].role == "user" and fitted.messages[1].text.startswith("question")


@pytest.mark.model
def test_turns_after_a_trim_reuse_the_kv_cache(engine: Engine) -> None:
    """On the real test model: a turn that keeps the previous turn's trimmed beginning evaluates only its new
    tokens. A small virtual window (384 of the engine's 2048) keeps this to a few hundred tokens."""
    from g3chat.core.engine.llama import LlamaCppEngine

    assert isinstance(engine, LlamaCppEngine)
    n_ctx, reserve = 384, 1
    turns = [
        [user(f"Question {i}: what is {i} plus {i + 1}? Be brief."), assistant(f"It is {2 * i + 1}.")]
        for i in range(30)
    ]
    sys_prompt = system("You are terse.")
    fits = [
        fit_to_context(prompt_at(sys_prompt, turns, t), engine.count_tokens, n_ctx, reserve)
        for t in range(30)
    ]
    # The first trimmed turn whose successor keeps the same beginning (counting only: no inference yet).
    t = next(t for t in range(29) if fits[t].dropped and fits[t + 1].dropped == fits[t].dropped)
    params = GenerationParams(temperature=0, max_tokens=1)
    collect(engine.stream_chat(fits[t].messages, params))
    result = collect(engine.stream_chat(fits[t + 1].messages, params))
    assert result.usage is not None and result.usage.prompt_tokens == fits[t + 1].tokens
    # Only what follows turn t's prompt: its answer, the new question and the turn markers.
    assert 0 < result.usage.prompt_eval_tokens <= fits[t + 1].tokens - fits[t].tokens
