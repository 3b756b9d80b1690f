"""Where a clip goes in a Gemma 3n prompt, and the embedding rows that fill it.

Gemma3nProcessor replaces each ``<audio_soft_token>`` the chat template emits for an audio item with::

    "\\n\\n<start_of_audio>" + "<audio_soft_token>" * 188 + "<end_of_audio>\\n\\n"

always 188 soft tokens (30 s of audio), whatever the clip's length. Gemma3nModel then puts, at those 188
positions, the encoder's soft tokens followed by copies of ``embed_audio``'s embedding of the last audio
vocabulary id (padding); and because ``<end_of_audio>`` (262272) is itself an audio-vocabulary id, its input
is ``embed_audio``'s embedding of it, not a row of the text embedding table. Both the soft tokens and
``<end_of_audio>`` use the padding token's per-layer input (they lie outside the per-layer vocabulary),
which is what llama.cpp does for embedding input: so the 189 rows of :func:`audio_rows` are decoded as one
embedding batch, and ``<start_of_audio>`` and the newlines as ordinary tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from g3chat.core.audio.encoder import AudioEncoder
from g3chat.core.audio.features import FeatureExtractor, MelFeatures
from g3chat.core.errors import InputError


@dataclass(frozen=True)
class AudioTokens:
    """Gemma 3n's audio token ids and texts (tokenizer_config.json of google/gemma-3n-E2B-it)."""

    boa: int = 256_000
    eoa: int = 262_272
    soft: int = 262_273
    boa_text: str = "<start_of_audio>"
    eoa_text: str = "<end_of_audio>"
    soft_text: str = "<audio_soft_token>"


def audio_block_text(soft_tokens: int, tokens: AudioTokens | None = None) -> str:
    """The text Gemma3nProcessor substitutes for one audio item (to be tokenized with special tokens)."""
    t = tokens or AudioTokens()
    return f"\n\n{t.boa_text}{t.soft_text * soft_tokens}{t.eoa_text}\n\n"


def audio_rows(encoder: AudioEncoder, features: MelFeatures, eoa: int) -> np.ndarray:
    """[soft_tokens + 1, text_hidden]: the clip's soft tokens, padding to the fixed count, <end_of_audio>."""
    cfg = encoder.config
    soft, keep = encoder(features.mel, features.valid)
    if soft.shape[0] > cfg.soft_tokens:
        raise InputError(f"the clip is longer than the model's audio window ({cfg.soft_tokens} soft tokens)")
    padding, end = filler_rows(encoder, eoa)
    rows = np.empty((cfg.soft_tokens + 1, soft.shape[1]), dtype=np.float32)
    rows[: soft.shape[0]] = np.where(keep[:, None], soft, padding)
    rows[soft.shape[0] : cfg.soft_tokens] = padding
    rows[cfg.soft_tokens] = end
    return rows


def filler_rows(encoder: AudioEncoder, eoa: int) -> tuple[np.ndarray, np.ndarray]:
    """The padding row (for soft tokens past the clip, and padded ones) and the ``<end_of_audio>`` row."""
    cfg = encoder.config
    padding, end = encoder.embed_hard(np.array([cfg.vocab_offset + cfg.vocab_size - 1, eoa]))
    return padding, end


def clip_rows(encoder: AudioEncoder, waveform: np.ndarray, eoa: int | None = None) -> np.ndarray:
    """:func:`audio_rows` of a 16 kHz mono clip of at most 30 s."""
    extractor = FeatureExtractor()
    if len(waveform) > extractor.max_samples:
        raise InputError("audio clips are limited to 30 s (the model's audio window); split longer ones")
    if len(waveform) < extractor.frame_length + 1:
        raise InputError("the audio clip is too short (less than 33 ms)")
    return audio_rows(encoder, extractor(waveform), AudioTokens().eoa if eoa is None else eoa)


@dataclass(frozen=True)
class Run:
    """A stretch of prompt positions decoded in one way: token ids, or embedding rows (with the ids the
    engine records for those positions)."""

    start: int
    ids: tuple[int, ...]
    rows: np.ndarray | None = None


def split_prompt(
    ids: Sequence[int], clips: Sequence[np.ndarray], tokens: AudioTokens | None = None, start: int = 0
) -> list[Run]:
    """Cut a prompt into token runs and embedding runs, from position ``start`` (what the KV cache lacks).

    Every maximal stretch of soft-token ids followed by ``<end_of_audio>`` is one clip; ``clips`` holds
    their :func:`audio_rows`, in prompt order (all of them, also those before ``start``).
    """
    t = tokens or AudioTokens()
    runs: list[Run] = []
    i, clip, n = 0, 0, len(ids)
    while i < n:
        if ids[i] == t.soft:
            j = i
            while j < n and ids[j] == t.soft:
                j += 1
            if j >= n or ids[j] != t.eoa or clip >= len(clips) or len(clips[clip]) != j + 1 - i:
                raise InputError("the prompt's audio placeholders do not match the audio clips given")
            rows, clip, end = clips[clip], clip + 1, j + 1
            if end > start:
                skip = max(0, start - i)
                runs.append(Run(i + skip, tuple(ids[i + skip : end]), rows[skip:]))
            i = end
        else:
            j = i
            while j < n and ids[j] != t.soft:
                j += 1
            if j > start:
                first = max(i, start)
                runs.append(Run(first, tuple(ids[first:j])))
            i = j
    if clip != len(clips):
        raise InputError("more audio clips than audio placeholders in the prompt")
    return runs
