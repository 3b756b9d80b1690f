"""Prompt-lookup drafting for speculative decoding.

When an answer echoes its input (rewrite this, fix this code, quote that), the next tokens are often a copy
of tokens already in the conversation. The drafter finds the longest recent n-gram that ends the text so
far and proposes the tokens that followed its previous occurrence. The engine evaluates the proposal in one
batch and keeps the longest prefix the model itself would have sampled, so the output is exactly what
non-speculative decoding produces (greedy) or is distributed exactly as it (sampling): every kept token is
one the sampler drew from the model's own distribution at that position.

The draft length adapts: it grows while drafts are accepted whole and shrinks when they are rejected, and
after repeated misses the drafter rests for a while, so free chat (where copies are rare) pays almost
nothing.
"""

from __future__ import annotations

from collections.abc import Sequence


class PromptLookupDrafter:
    """Incremental n-gram index over the conversation's tokens. O(max_ngram) per token."""

    def __init__(
        self,
        tokens: Sequence[int],
        *,
        min_ngram: int = 2,
        max_ngram: int = 4,
        min_draft: int = 2,
        max_draft: int = 16,
        start_draft: int = 6,
        rest_after_misses: int = 3,
        rest_tokens: int = 16,
    ) -> None:
        self.min_ngram = min_ngram
        self.max_ngram = max_ngram
        self.min_draft = min_draft
        self.max_draft = max_draft
        self.draft_len = start_draft
        self.rest_after_misses = rest_after_misses
        self.rest_tokens = rest_tokens
        self._misses = 0
        self._resting = 0
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
        if self._resting:
            self._resting -= 1

    def propose(self) -> list[int]:
        """Tokens likely to come next (possibly none)."""
        if self._resting:
            return []
        tokens = self.tokens
        for n in range(self.max_ngram, self.min_ngram - 1, -1):
            if len(tokens) < n:
                continue
            start = self._index.get(tuple(tokens[-n:]))
            if start is not None:
                draft = tokens[start : start + self.draft_len]
                if draft:
                    self.proposed += len(draft)
                    return draft
        return []

    def feedback(self, drafted: int, accepted: int) -> None:
        """Adapt to how much of the last draft the model kept."""
        self.accepted += accepted
        if accepted == drafted:
            self.draft_len = min(self.max_draft, self.draft_len + 2)
            self._misses = 0
        elif accepted == 0:
            self.draft_len = max(self.min_draft, self.draft_len // 2)
            self._misses += 1
            if self._misses >= self.rest_after_misses:
                self._resting = self.rest_tokens
                self._misses = 0
        else:
            self.draft_len = max(self.min_draft, accepted + 1)
            self._misses = 0
