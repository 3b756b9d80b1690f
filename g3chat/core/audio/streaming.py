"""Gemma 3n's audio tower, incrementally: soft tokens as the samples of a clip arrive.

Everything in the tower looks back, never (far) ahead, so the rows of a clip's beginning do not change when
more audio follows, and :class:`StreamingEncoder` returns each soft token as soon as its inputs are in:

- the log-mel frames: frame ``i`` reads samples ``[160 i, 160 i + 513)``; no whole-clip normalization
  (:class:`~g3chat.core.audio.features.MelStream`);
- each sub-sampling convolution reads rows ``2t, 2t + 1, 2t + 2`` of its input (zeros past the clip's end:
  the only look-ahead, two rows, resolved at :meth:`StreamingEncoder.finish`); its cumulative group norm
  carries running sums;
- each conformer block's attention sees the 12 rows before a row and the row itself (no right context),
  its depthwise convolution the 4 rows before; the blocks keep those rows (``BlockState``);
- the reduction keeps every 4th row, ``embed_audio`` works row by row.

With Gemma 3n's settings soft token ``j`` is final once ``2560 j + 1473`` samples (160 ms per token, plus
92 ms) have arrived: at the end of a clip at most the last token is left to compute. Rows computed chunk by
chunk equal the whole clip's to float32 rounding (tests/core/audio/test_audio_streaming.py).
"""

from __future__ import annotations

import copy

import numpy as np

from g3chat.core.audio import layers as L
from g3chat.core.audio.encoder import AudioEncoder, BlockState
from g3chat.core.audio.features import FeatureExtractor, MelStream


class _ConvStream:
    """One sub-sampling convolution, its cumulative group norm and ReLU, over rows arriving in pieces."""

    def __init__(self, weight: np.ndarray, scale: np.ndarray, stride: tuple[int, int], eps: float) -> None:
        self.weight, self.scale, self.stride, self.eps = weight, scale, stride, eps
        self.reach = weight.shape[2]  # input rows one output reads (2t … 2t + kernel - 1)
        self.totals = np.zeros(3, dtype=np.float64)
        self._pending: np.ndarray | None = None  # input rows from the next output's first on

    def push(self, rows: np.ndarray, *, last: bool = False) -> np.ndarray:
        """Output rows made final by ``rows`` (all the rest when ``last``: zeros past the end)."""
        pending = rows if self._pending is None else np.concatenate([self._pending, rows])
        step = self.stride[0]
        if last:
            n_out = -(-len(pending) // step)
            used = pending
        else:
            n_out = (len(pending) - self.reach) // step + 1 if len(pending) >= self.reach else 0
            used = pending[: (n_out - 1) * step + self.reach]
        self._pending = pending[n_out * step :]
        if n_out == 0:
            return np.zeros((0, *self._shape(pending)), np.float32)
        out = L.conv2d_time_freq(np.ascontiguousarray(used), self.weight, self.stride)[:n_out]
        out = L.cumulative_group_norm(out, self.scale, self.eps, self.totals)
        return np.maximum(out, 0.0, out=out)

    def _shape(self, x: np.ndarray) -> tuple[int, int]:
        f_out = (x.shape[1] + 2 - self.weight.shape[3]) // self.stride[1] + 1
        return f_out, self.weight.shape[0]


class StreamingEncoder:
    """One clip's soft-token embeddings, computed while its samples arrive.

    ``push(samples)`` returns the embeddings [k, text_hidden] of the soft tokens that became final (k may
    be 0) and whether each is real audio; ``finish()`` returns the rest. Together they are what
    ``encoder(*extract_features(clip))`` returns for the whole clip. At most one audio window (30 s).
    """

    def __init__(self, encoder: AudioEncoder, extractor: FeatureExtractor | None = None) -> None:
        cfg = encoder.config
        if cfg.context_right:
            raise ValueError("an encoder whose attention looks ahead cannot stream")
        self.encoder = encoder
        self.mel = MelStream(extractor)
        self.convs = [
            _ConvStream(weight, scale, stride, cfg.sscp_group_norm_eps)
            for (weight, scale), stride in zip(encoder.convs, cfg.sscp_strides)
        ]
        self.blocks = [BlockState.empty(cfg) for _ in encoder.blocks]
        self.step = int(np.prod([s[0] for s in cfg.sscp_strides]))  # mel frames per conformer row
        self.n_rows = 0  # conformer rows computed
        self.n_tokens = 0  # soft tokens returned
        self.finished = False

    @property
    def n_samples(self) -> int:
        return self.mel.n_samples

    def fork(self) -> StreamingEncoder:
        """An independent copy of the state so far that shares the weights: finishing the copy gives the
        clip's last rows as if it ended here, and this stream can still go on (engine/listening.py)."""
        shared: list[object] = [self.encoder, self.mel.extractor]
        shared += [array for conv in self.convs for array in (conv.weight, conv.scale)]
        return copy.deepcopy(self, {id(x): x for x in shared})

    def push(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.finished:
            raise ValueError("the clip has finished")
        frames = self.mel.push(samples)
        return self._rows(frames, np.ones(self.mel.n_frames, dtype=bool), last=False)

    def finish(self, samples: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The rest of the clip, ending with ``samples`` if given: ``push(samples)`` and ``finish()`` in one
        pass through the tower (each pass streams all of its weights, whatever the number of rows)."""
        if self.finished:
            raise ValueError("the clip has finished")
        self.finished = True
        head = self.mel.push(samples) if samples is not None and len(samples) else None
        features = self.mel.finish()
        frames = features.mel if head is None else np.concatenate([head, features.mel])
        return self._rows(frames, features.valid, last=True)

    def _rows(
        self, frames: np.ndarray, valid_frames: np.ndarray, *, last: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        enc, cfg = self.encoder, self.encoder.config
        x = frames[:, :, None]
        for conv in self.convs:
            x = conv.push(x, last=last)
        n = x.shape[0]
        if n == 0:
            return np.zeros((0, cfg.text_hidden_size), np.float32), np.zeros(0, dtype=bool)
        x = x.reshape(n, -1) @ enc.input_proj
        if len(valid_frames):
            index = np.minimum((self.n_rows + np.arange(n)) * self.step, len(valid_frames) - 1)
            valid = valid_frames[index]
        else:
            valid = np.zeros(n, dtype=bool)
        for block, state in zip(enc.blocks, self.blocks):
            x = enc._block(block, x, valid, state)
        first = self.n_rows
        self.n_rows += n
        keep_rows = (first + np.arange(n)) % cfg.reduction_factor == 0
        x, valid = x[keep_rows], valid[keep_rows]
        x[~valid] = 0.0
        self.n_tokens += len(x)
        return enc.embed_soft(x), valid


def final_tokens(n_samples: int, encoder: AudioEncoder, extractor: FeatureExtractor | None = None) -> int:
    """How many soft tokens are final once ``n_samples`` samples of a clip have arrived (more to come)."""
    ex = extractor or FeatureExtractor()
    size = ex.frame_length + 1
    rows = (n_samples - size) // ex.hop_length + 1 if n_samples >= size else 0
    for (weight, _), (stride, _) in zip(encoder.convs, encoder.config.sscp_strides):
        reach = weight.shape[2]
        rows = (rows - reach) // stride + 1 if rows >= reach else 0
    return -(-rows // encoder.config.reduction_factor)
