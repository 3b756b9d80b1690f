"""Gemma 3n hears: audio attachments reach the model as embeddings, inside the engine's normal prefill.

llama.cpp's mtmd skips Gemma 3n's audio tower, so for a Gemma 3n model (GGUF architecture ``gemma3n``) the
engine hands audio attachments to a :class:`Hearing` instead of the projector. Each clip becomes, per
window, what Gemma3nProcessor writes for one audio item::

    "\\n\\n" <start_of_audio> | 188 soft-token rows + the <end_of_audio> row | "\\n\\n"
          tokens              |   one embedding run (engine/embeddings.py)  |  tokens

The rows (features -> encoder -> ``embed_audio`` -> padding -> ``<end_of_audio>``, see
:mod:`g3chat.core.audio.layout`) are computed only when the run is evaluated, so counting tokens and reusing
a cached clip cost nothing. In the KV bookkeeping the run's positions hold placeholder ids derived from the
weights file and the clip's sha256 (as media chunks do, see engine/projector.py): a later turn reuses the
clip's keys and values, a different clip (or other weights) never matches.

**Clips longer than 30 s are split, not refused.** Gemma 3n's audio window is 30 s: the processor keeps
only the first 30 s of a clip and always lays out 188 soft tokens. A longer clip is cut into consecutive
windows of 30 s, the last holding the rest (a 31 s clip is 30 s and 1 s), each its own audio block in
order, the way the processor lays out several audio items. The layout depends only on the sample count, so
a file read while it is decoded and a recording read while it is made (engine/listening.py: their length is
unknown until they end) are laid out as the stored clip is. A two-minute voice memo is heard whole for
about 780 prompt tokens, where a refusal would make the user cut the file by hand and truncation would
silently drop most of it. The context window still bounds the total (a long clip that does not fit is the
usual "does not fit the context" error).

The encoder's weights (about 2.7 GB as float32 for E2B) are loaded the first time a clip is evaluated and
freed by :meth:`Hearing.close`.
"""

from __future__ import annotations

import math
import wave
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from g3chat.core.audio.config import AudioConfig
from g3chat.core.engine.base import MediaProblem
from g3chat.core.engine.projector import MediaItem, placeholder_ids
from g3chat.core.errors import InputError, MediaError
from g3chat.core.types import AttachmentPart

SAMPLE_RATE = 16_000
WINDOW_SAMPLES = 480_000  # 30 s: the model's audio window
MIN_SAMPLES = 513  # one 32 ms frame plus the pre-emphasis sample; shorter clips are padded with silence
CACHE_WINDOWS = 8
BOA_TEXT, EOA_TEXT = "<start_of_audio>", "<end_of_audio>"
PULL = "run 'g3chat models pull --audio'"
NO_WEIGHTS = "Gemma 3n's audio encoder weights are not installed"
LIVE = "live-"  # the sha256 of a stand-in for a clip still being read (engine/listening.py's live_part)
NO_TOKENS = f"this Gemma 3n GGUF has no {BOA_TEXT} / {EOA_TEXT} tokens in its vocabulary"


def window_samples(config: AudioConfig) -> int:
    """The longest clip whose soft tokens fit the layout: 30 s for Gemma 3n (188 soft tokens, one per 160
    ms); shorter for a smaller ``soft_tokens`` (the tiny test model's 24)."""
    from g3chat.core.audio.features import FeatureExtractor

    extractor = FeatureExtractor()
    step = config.reduction_factor * math.prod(s[0] for s in config.sscp_strides)  # frames per soft token
    low, high = 1, extractor.max_samples
    while low < high:  # the soft-token count grows with the length: the last length that fits
        middle = (low + high + 1) // 2
        if -(-extractor.n_frames(middle) // step) <= config.soft_tokens:
            low = middle
        else:
            high = middle - 1
    return low


def windows(n_samples: int, limit: int = WINDOW_SAMPLES) -> list[tuple[int, int]]:
    """Consecutive [start, end) windows of ``limit`` samples covering ``n_samples``, the last holding the
    rest (one window, maybe empty, for a clip no longer than ``limit``)."""
    return [(start, min(n_samples, start + limit)) for start in range(0, max(1, n_samples), limit)]


@dataclass(frozen=True, eq=False)
class AudioChunk:
    """One window of a clip in a prompt plan: its rows are computed when it is evaluated."""

    hearing: Hearing
    part: AttachmentPart
    window: tuple[int, int]
    placeholders: tuple[int, ...]

    @property
    def n_tokens(self) -> int:
        return len(self.placeholders)

    def evaluate(self, llm: Any) -> None:
        """Decode the window's rows right after the cached tokens, recording its placeholder ids."""
        from g3chat.core.engine.embeddings import decode_embeddings

        decode_embeddings(llm, self.hearing.rows(self.part, self.window), ids=self.placeholders)


class Hearing:
    """Gemma 3n's audio path for one loaded model; ``problem`` says why it cannot hear (None: it can).

    ``candidates`` are audio weights files in order of preference (``engine.audio_weights``, an mmproj with
    the audio tower, what ``models pull --audio`` installed); the first whose embedder fits the model's
    hidden size, and that was made for this model size where both say (:mod:`g3chat.core.audio.provenance`),
    is used. ``base`` carries what the weights do not (the soft-token count: E2B's 188).
    """

    def __init__(self, llm: Any, candidates: Sequence[Path] = (), base: AudioConfig | None = None) -> None:
        self.llm = llm
        self.candidates = tuple(candidates)
        self.config = base or AudioConfig()
        self.path: Path | None = None
        self.problem: MediaProblem | None = None
        self.boa = self.eoa = -1
        self.between: tuple[int, ...] = ()
        self._encoder: Any = None
        self._rows: OrderedDict[tuple[str, tuple[int, int]], Any] = OrderedDict()
        self.window = window_samples(self.config)
        boa = llm.tokenize(BOA_TEXT.encode(), add_bos=False, special=True)
        eoa = llm.tokenize(EOA_TEXT.encode(), add_bos=False, special=True)
        if len(boa) != 1 or len(eoa) != 1:
            self.problem = MediaProblem(NO_TOKENS)
            return
        self.boa, self.eoa = boa[0], eoa[0]
        # between two windows: the blank lines after one audio block and before the next (the blank lines
        # around the whole clip are the prompt's, see g3chat.core.prompt)
        self.between = tuple(llm.tokenize(b"\n\n\n\n", add_bos=False, special=False))
        self.path, self.problem = self._choose(llm.n_embd())

    def _choose(self, n_embd: int) -> tuple[Path | None, MediaProblem | None]:
        """The first candidate that is complete (from its header) and fits the model: its width, and its
        size (E2B, E4B: the same width) where both the model and the weights say which they are."""
        from g3chat.core.audio.install import check_header
        from g3chat.core.audio.provenance import model_size, weights_size

        size = model_size(self.llm.metadata)
        unusable: list[str] = []
        other_sizes: list[str] = []
        for path in self.candidates:
            if not path.is_file():
                continue
            try:
                config = check_header(path, self.config)
            except (OSError, InputError) as exc:
                unusable.append(str(exc))
                continue
            made_for = weights_size(path)
            if config.text_hidden_size != n_embd:
                other_sizes.append(f"{path.name} (width {config.text_hidden_size})")
            elif size and made_for and made_for != size:
                other_sizes.append(f"{path.name} ({made_for.upper()})")
            else:
                return path, None
        pull = f"run 'g3chat models pull --audio {size}'" if size else PULL
        if other_sizes:
            this = f"this model is {size.upper()}" if size else f"this model's width is {n_embd}"
            found = ", ".join(other_sizes)
            reason = f"the Gemma 3n audio weights found are for another model size: {found}; {this}"
            return None, MediaProblem(reason, pull if size else f"{PULL} VARIANT for this model's variant")
        if unusable:
            return None, MediaProblem(f"the Gemma 3n audio weights cannot be used: {unusable[0]}", pull)
        return None, MediaProblem(NO_WEIGHTS, pull)

    @property
    def ready(self) -> bool:
        return self.problem is None

    @property
    def key(self) -> str:
        assert self.path is not None
        st = self.path.stat()
        return f"gemma3n-audio|{self.path.resolve()}|{st.st_size}|{st.st_mtime_ns}"

    # ------------------------------------------------------------------------------------ prompt plan

    def item(self, part: AttachmentPart) -> MediaItem:
        """The clip's prompt pieces: per window, its wrapper tokens and an :class:`AudioChunk`."""
        n_rows = self.config.soft_tokens + 1
        pieces: list[list[int] | AudioChunk] = []
        for index, window in enumerate(windows(self._n_samples(part), self.window)):
            ids = placeholder_ids(f"{self.key}|{part.sha256}|{window[0]}:{window[1]}", n_rows)
            pieces += [[*(self.between if index else ()), self.boa], AudioChunk(self, part, window, ids)]
        return MediaItem(tuple(pieces), None)

    def _n_samples(self, part: AttachmentPart) -> int:
        if part.sha256.startswith(LIVE):  # a clip still being read (engine/listening.py): one window
            return self.window
        try:
            with wave.open(str(part.path), "rb") as wav:
                n, rate = wav.getnframes(), wav.getframerate()
        except (OSError, EOFError, wave.Error) as exc:
            raise MediaError(f"{part.path}: cannot read audio attachment {part.name}: {exc}") from None
        return n if rate == SAMPLE_RATE else -(-n * SAMPLE_RATE // rate)

    # ---------------------------------------------------------------------------------------- rows

    def rows(self, part: AttachmentPart, window: tuple[int, int]) -> Any:
        """[soft_tokens + 1, n_embd] embedding rows of one window of the clip (cached by sha256)."""
        key = (part.sha256, window)
        cached = self._rows.get(key)
        if cached is not None:
            self._rows.move_to_end(key)
            return cached
        import numpy as np

        from g3chat.core.audio.layout import clip_rows

        samples = self._samples(part)[window[0] : window[1]]
        if len(samples) < MIN_SAMPLES:
            samples = np.pad(samples, (0, MIN_SAMPLES - len(samples)))
        rows = clip_rows(self.encoder(), samples, eoa=self.eoa)
        self.remember(part.sha256, window, rows)
        return rows

    def remember(self, sha256: str, window: tuple[int, int], rows: Any) -> None:
        """Keep a window's rows for a later evaluation (the last ``CACHE_WINDOWS``)."""
        self._rows[(sha256, window)] = rows
        self._rows.move_to_end((sha256, window))
        while len(self._rows) > CACHE_WINDOWS:
            self._rows.popitem(last=False)

    @staticmethod
    def _samples(part: AttachmentPart) -> Any:
        from g3chat.core.media.audio import decode_audio, read_wav

        try:
            samples, rate = read_wav(part.path)
        except (OSError, EOFError, wave.Error):
            samples, rate = None, 0
        if samples is None or rate != SAMPLE_RATE:
            samples = decode_audio(part.path, rate=SAMPLE_RATE)
        return samples

    def encoder(self) -> Any:
        """The audio encoder, loaded on first use (once per engine)."""
        if self._encoder is None:
            if self.path is None:
                raise InputError(f"{NO_WEIGHTS} ({PULL})")
            from g3chat.core.audio.encoder import AudioEncoder
            from g3chat.core.audio.weights import load_audio_weights

            weights = load_audio_weights(self.path, self.config)
            # <end_of_audio> is the first id of the audio vocabulary (as in every Gemma 3n checkpoint)
            config = replace(weights.config, vocab_offset=self.eoa)
            self._encoder = AudioEncoder(config, weights.tensors)
        return self._encoder

    def close(self) -> None:
        self._encoder = None
        self._rows.clear()
