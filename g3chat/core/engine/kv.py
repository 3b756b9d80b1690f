"""The KV cache of one llama.cpp context: what it holds, what a new prompt can keep, saved states.

g3chat uses sequence 0 of the context. ``llm.input_ids[:llm.n_tokens]`` always lists exactly the tokens
whose keys and values the cache holds; every method here keeps that true. Positions filled by an image or
audio chunk hold that chunk's placeholder ids (negative, derived from the media's sha256: see
engine/projector.py), so prefix matching and saved states treat media like text. A media chunk is only
ever kept or dropped whole: ``prepare`` never keeps a prefix that ends inside one (its embeddings were
decoded together, non-causally for Gemma's images, and mtmd can only evaluate whole chunks).
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

from g3chat.core.engine.state_cache import StateCache

# Restoring a saved state costs a copy of its keys and values: only worth it when it saves real work.
MIN_RESTORE_GAIN = 32


class KVSession:
    def __init__(self, llm: Any, states: StateCache | None = None) -> None:
        self.llm = llm
        self.states = states
        self.restored = 0  # tokens brought back from a saved state at the last prepare()

    def tokens(self) -> list[int]:
        return [int(t) for t in self.llm.input_ids[: self.llm.n_tokens]]

    def common_prefix(self, tokens: Sequence[int]) -> int:
        n = 0
        for a, b in zip(self.llm.input_ids[: self.llm.n_tokens], tokens):
            if a != b:
                break
            n += 1
        return n

    # --------------------------------------------------------------------------------- evaluation

    def decode(self, tokens: Sequence[int], all_logits: bool) -> None:
        """Evaluate ``tokens`` right after the cached ones; logits for every position or only the last."""
        llm = self.llm
        n_past = llm.n_tokens
        llm._batch.set_batch(batch=list(tokens), n_past=n_past, logits_all=all_logits)
        llm._ctx.decode(llm._batch)
        llm.input_ids[n_past : n_past + len(tokens)] = tokens
        llm.n_tokens = n_past + len(tokens)

    def truncate(self, n_tokens: int) -> bool:
        """Keep the first ``n_tokens``; False when llama.cpp cannot (then the cache is cleared)."""
        llm = self.llm
        if llm._ctx.kv_cache_seq_rm(-1, n_tokens, -1):
            llm.n_tokens = n_tokens
            return True
        llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        llm.n_tokens = 0
        return False

    def append_placeholders(self, ids: Sequence[int], n_after: int) -> None:
        """Record a media chunk that mtmd just decoded after the cached tokens (now ``n_after`` of them)."""
        llm = self.llm
        n_past = llm.n_tokens
        if n_after - n_past != len(ids):
            self.truncate(n_past)
            raise RuntimeError(f"a media chunk took {n_after - n_past} positions, expected {len(ids)}")
        llm.input_ids[n_past:n_after] = ids
        llm.n_tokens = n_after

    # ------------------------------------------------------------------------------- prompt reuse

    def prepare(self, prompt: Sequence[int], spans: Sequence[tuple[int, int]] = ()) -> int:
        """Make the cache hold the longest usable prefix of ``prompt``; return its length.

        The live cache is kept as far as it matches. When a saved state shares a longer prefix with the
        prompt, the live one is saved first (so switching back to it is cheap too) and the saved one
        restored, then cut back to the tokens it shares. At least the last prompt token is always left to
        evaluate, so its logits are fresh. ``spans`` are the prompt's media chunks as (start, end)
        positions: a kept prefix never ends strictly inside one.
        """
        live = self.common_prefix(prompt)
        self.restored = 0
        from_state = False
        if self.states is not None:
            n_swa = self._n_swa()
            for candidate in self.states.candidates(prompt, at_least=live + MIN_RESTORE_GAIN):
                keep = self._usable(candidate.length, prompt, spans)
                cut = keep < candidate.n_tokens
                if keep <= live or (cut and n_swa > 0 and candidate.pos_min > max(0, keep - n_swa)):
                    continue  # cut back before the window it kept: its local layers would lack keys
                state = candidate.load()
                if state is None:
                    continue
                self.stash()
                if self._restore(state.tokens, state.payload):
                    live, from_state = keep, True
                else:
                    self.states.forget(state.tokens)
                    live = 0
                break
            else:
                if self.llm.n_tokens - live > MIN_RESTORE_GAIN:
                    self.stash()  # about to discard a long tail: keep it for a later switch back
        keep = self._usable(live, prompt, spans)
        if keep > 0 and not self._window_allows(keep):
            keep = 0
        if keep <= 0 or not self.truncate(keep):
            self.truncate(0)
            return 0
        self.restored = keep if from_state else 0
        return keep

    @staticmethod
    def _usable(shared: int, prompt: Sequence[int], spans: Sequence[tuple[int, int]]) -> int:
        """How much of ``shared`` leading tokens may be kept: the last prompt token is always evaluated
        (fresh logits), and a media chunk is kept whole or not at all."""
        keep = min(shared, len(prompt) - 1)
        for start, end in spans:
            if start < keep < end:
                keep = start
        return keep

    def _n_swa(self) -> int:
        import llama_cpp

        return max(0, llama_cpp.llama_model_n_swa(self.llm.model))

    def _pos_min(self) -> int:
        import llama_cpp

        return max(0, llama_cpp.llama_memory_seq_pos_min(llama_cpp.llama_get_memory(self.llm.ctx), 0))

    def _window_allows(self, keep: int) -> bool:
        """A trimmed sliding-window cache has dropped old positions; rolling back before the window would
        leave those layers without the keys they need (the check llama-server makes)."""
        n_swa = self._n_swa()
        return n_swa <= 0 or keep >= self.llm.n_tokens or self._pos_min() <= max(0, keep - n_swa)

    # ------------------------------------------------------------------------------- saved states

    def snapshot(self) -> bytes:
        """The context's whole state. Not the sequence's (``llama_state_seq_get_data``): that one leaves
        out the cells a sliding-window layer no longer attends to, and a state without them can only be
        continued, never cut back to an earlier token (Gemma's local layers need the window before it).
        g3chat uses sequence 0 only, so the whole state is that sequence's, with every cell."""
        import llama_cpp

        ctx = self.llm.ctx
        size = llama_cpp.llama_state_get_size(ctx)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_get_data(ctx, buffer, size)
        return ctypes.string_at(buffer, written)

    def stash(self, *, to_disk: bool = False, min_disk_tokens: int | None = None) -> None:
        """Save the live cache (memory tier; also disk when asked and long enough)."""
        if self.states is None or self.llm.n_tokens == 0:
            return
        self.states.put(
            self.tokens(),
            self.snapshot(),
            pos_min=self._pos_min(),
            to_disk=to_disk,
            min_disk_tokens=min_disk_tokens,
        )

    def stash_prefix(self, *, to_disk: bool) -> None:
        """Save the live cache as a shared prefix (what every new conversation starts with), unless it is
        saved already: small, so it goes to disk whatever its length."""
        if self.states is None or self.llm.n_tokens < MIN_RESTORE_GAIN:
            return
        if not self.states.holds(self.tokens()):
            self.stash(to_disk=to_disk, min_disk_tokens=MIN_RESTORE_GAIN)

    def _restore(self, tokens: Sequence[int], payload: bytes) -> bool:
        import llama_cpp

        llm = self.llm
        llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        llm.n_tokens = 0
        buffer = (ctypes.c_uint8 * len(payload)).from_buffer_copy(payload)
        if llama_cpp.llama_state_set_data(llm.ctx, buffer, len(payload)) != len(payload):
            llm._ctx.kv_cache_seq_rm(-1, 0, -1)
            return False
        llm.input_ids[: len(tokens)] = tokens
        llm.n_tokens = len(tokens)
        return True
