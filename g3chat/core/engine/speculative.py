"""Prompt-lookup drafting for speculative decoding.

When an answer echoes its input (rewrite this, fix this code, quote that), the next tokens are often a copy
of tokens already in the conversation. The drafter finds the longest recent n-gram that ends the text so
far and proposes the tokens that followed its previous occurrence. The engine evaluates the proposal in one
batch and keeps the longest prefix the model itself would have sampled, so the output is exactly what
non-speculative decoding produces (greedy) or is distributed exactly as it (sampling): every kept token is
one the sampler drew from the model's own distribution at that position.

How long a draft to verify is decided by :class:`DraftPolicy` from the cost curve of the loaded model:
on a GPU a batch of 8 tokens costs little more than one, and long drafts pay; on a few CPU cores a batch
of 8 costs about 4x one token for the 270M test model and 5x for a Gemma 3n E2B-shaped Q4_K_M (two
cores, measured by bench/speculative.py), and only nearly certain copies pay. The engine measures the
curve once per model and settings (a batch of 8 and a single token at the end of a prefill, see
``calibration_ratios``) and keeps it; the policy starts from it, times every decode, estimates how often
drafted tokens are accepted, and drafts only when the expected tokens per second beat plain decoding.
"""

from __future__ import annotations

from collections.abc import Sequence

DRAFT_SIZES = (1, 3, 7, 15)  # verification batches of 2, 4, 8 and 16 tokens


class PromptLookupDrafter:
    """Incremental n-gram index over the conversation's tokens. O(max_ngram) per token."""

    def __init__(self, tokens: Sequence[int], *, min_ngram: int = 2, max_ngram: int = 4) -> None:
        self.min_ngram = min_ngram
        self.max_ngram = max_ngram
        self.tokens: list[int] = []
        # n-gram -> position just after its most recent occurrence (only occurrences followed by a token)
        self._index: dict[tuple[int, ...], int] = {}
        self.proposed = 0
        self.accepted = 0
        for token in tokens:
            self.append(token)

    def append(self, token: int) -> None:
        """Record a token that is now part of the text (prompt, or generated and kept)."""
        tokens = self.tokens
        tokens.append(token)
        end = len(tokens) - 1  # the n-grams ending just before this token are now followed by it
        for n in range(self.min_ngram, self.max_ngram + 1):
            if end - n < 0:
                break
            self._index[tuple(tokens[end - n : end])] = end

    def propose(self, limit: int) -> list[int]:
        """Up to ``limit`` tokens likely to come next: what followed the longest matching n-gram."""
        tokens = self.tokens
        for n in range(self.max_ngram, self.min_ngram - 1, -1):
            if len(tokens) < n:
                continue
            start = self._index.get(tuple(tokens[-n:]))
            if start is not None:
                return tokens[start : start + limit]
        return []


CALIBRATION_BATCH = 8  # the verification batch timed against a single token to learn the cost curve


def calibration_ratios(batch_s: float, single_s: float) -> dict[int, float]:
    """The cost of a step with each draft length relative to a plain one, from one timed batch of
    ``CALIBRATION_BATCH`` tokens and one single token (linear in between: what CPUs and GPUs show)."""
    ratio = max(1.0, batch_s / max(single_s, 1e-9))
    slope = (ratio - 1) / (CALIBRATION_BATCH - 1)
    return {k: 1 + slope * k for k in DRAFT_SIZES}


class DraftPolicy:
    """Chooses the draft length that maximises expected tokens per second, from measured decode costs.

    ``ratios`` is the loaded model's cost curve (draft length -> cost of the step relative to a plain
    one), measured earlier; lengths it lacks are assumed to cost ``1 + 0.1 * length`` (as on a GPU) until
    measured.
    """

    def __init__(
        self, *, alpha: float = 0.7, smoothing: float = 0.3, ratios: dict[int, float] | None = None
    ) -> None:
        self.prior = alpha
        self.alpha = alpha  # estimated probability that a drafted token is accepted
        self.smoothing = smoothing
        self.ratios = dict(ratios or {})
        self.cost: dict[int, float] = {}  # draft length -> seconds for one decode of 1 + length tokens

    def choose(self, available: int) -> int:
        """How many of ``available`` proposed tokens to verify (0: decode one token plainly)."""
        plain = self.cost.get(0)
        if plain is None or available <= 0:
            return 0
        # Drift back towards the prior while not drafting, so a bad patch does not switch drafting off
        # for the rest of the answer.
        self.alpha += 0.02 * (self.prior - self.alpha)
        best, best_rate = 0, 1.0 / plain
        alpha = min(self.alpha, 0.999)
        for k in DRAFT_SIZES:
            if k > available:
                break
            cost = self.cost.get(k, plain * self.ratios.get(k, 1 + 0.1 * k))
            expected = (1 - alpha ** (k + 1)) / (1 - alpha)  # kept drafts + the token sampled after them
            rate = expected / cost
            if rate > best_rate:
                best, best_rate = k, rate
        return best

    def learned(self) -> dict[int, float]:
        """The cost curve as measured in this answer (lengths measured together with a plain step)."""
        plain = self.cost.get(0)
        return {k: c / plain for k, c in self.cost.items() if k and plain}

    def record(self, drafted: int, seconds: float, accepted: int = 0) -> None:
        """One decode of ``1 + drafted`` tokens took ``seconds`` and kept ``accepted`` drafted tokens."""
        key = min((k for k in (0, *DRAFT_SIZES) if k >= drafted), default=drafted)
        old = self.cost.get(key)
        self.cost[key] = seconds if old is None else old + self.smoothing * (seconds - old)
        if drafted:
            trials = accepted + (1 if accepted < drafted else 0)
            observed = accepted / trials
            self.alpha += self.smoothing * (observed - self.alpha)


class FixedDraft:
    """Always verify up to ``length`` drafted tokens (for tests and for measuring)."""

    def __init__(self, length: int) -> None:
        self.length = length

    def choose(self, available: int) -> int:
        return min(self.length, available)

    def record(self, drafted: int, seconds: float, accepted: int = 0) -> None:
        pass
