"""Fitting a conversation into the context window (headless; token counts from a simple counter)."""

from __future__ import annotations

from collections.abc import Sequence

from g3chat.core.context import answer_reserve, fit_to_context
from g3chat.core.types import Message, assistant, system, user


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


def test_oldest_turns_go_first_system_and_latest_stay() -> None:
    msgs = history(10)  # 6 + 10 * 30 + 6 = 312 "tokens"
    fitted = fit_to_context(msgs, words, n_ctx=200, reserve=50)
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


def test_bisection_counts_few_times() -> None:
    calls = []

    def counting(messages: Sequence[Message]) -> int:
        calls.append(len(messages))
        return words(messages)

    fit_to_context(history(500), counting, n_ctx=400, reserve=100)
    assert len(calls) <= 12


def test_a_single_turn_that_does_not_fit_is_kept_and_flagged() -> None:
    msgs = [system("s"), user("w " * 500)]
    fitted = fit_to_context(msgs, words, n_ctx=100, reserve=25)
    assert not fitted.fits and fitted.messages == msgs and fitted.dropped == 0


def test_answer_reserve() -> None:
    assert answer_reserve(8192, None) == 1024
    assert answer_reserve(2048, None) == 512
    assert answer_reserve(2048, 64) == 64
    assert answer_reserve(100, 500) == 99
