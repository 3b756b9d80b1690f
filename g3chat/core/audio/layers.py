"""The audio tower's building blocks as numpy functions on float32 arrays (time is always axis 0).

Each mirrors a module of transformers' ``modeling_gemma3n.py`` (named in its docstring) closely enough to
match it to float32 rounding. Matrices are multiplied through numpy's BLAS; loops run over layers,
convolution taps or kernel positions, never over frames.
"""

from __future__ import annotations

import math

import numpy as np

NEG = np.float32(np.finfo(np.float32).min)  # what transformers puts in masked attention logits


def rms_norm(x: np.ndarray, weight: np.ndarray | None, eps: float) -> np.ndarray:
    """Gemma3nRMSNorm: x / sqrt(mean(x^2) + eps) * weight (no +1 offset; no weight when None)."""
    scale = np.mean(np.square(x), axis=-1, keepdims=True)
    scale += np.float32(eps)
    out = x * (scale ** np.float32(-0.5))
    if weight is not None:
        out *= weight
    return out


def silu_(x: np.ndarray) -> np.ndarray:
    """x * sigmoid(x), in place."""
    with np.errstate(over="ignore"):
        sig = np.exp(-x)
    sig += 1.0
    np.divide(x, sig, out=x)
    return x


def sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        out = np.exp(-x)
    out += 1.0
    return np.reciprocal(out, out=out)


def softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(np.float32(0.0), x).astype(np.float32)


def clip_(x: np.ndarray, limit: float) -> np.ndarray:
    return np.clip(x, -limit, limit, out=x)


# ---------------------------------------------------------------------------------------- sub-sampling


def conv2d_time_freq(x: np.ndarray, weight: np.ndarray, stride: tuple[int, int]) -> np.ndarray:
    """One SSCP convolution: x [T, F, Cin], weight [Cout, Cin, kT, kF] -> [T', F', Cout].

    Padding as Gemma3nAudioSubSampleConvProjection: time (0, kT - 1) ("reverse causal"), frequency (1, 1).
    """
    t, f, c_in = x.shape
    c_out, _, k_t, k_f = weight.shape
    s_t, s_f = stride
    padded = np.zeros((t + k_t - 1, f + 2, c_in), dtype=np.float32)
    padded[:t, 1 : f + 1] = x
    t_out = (t + k_t - 1 - k_t) // s_t + 1
    f_out = (f + 2 - k_f) // s_f + 1
    st, sf, sc = padded.strides
    # Every (kernel row, kernel column) tap as a strided view [T', F', Cin].
    shape = (k_t, k_f, t_out, f_out, c_in)
    taps = np.lib.stride_tricks.as_strided(
        padded, shape=shape, strides=(st, sf, st * s_t, sf * s_f, sc), writeable=False
    )
    if c_in * k_t * k_f <= 64:  # narrow input (the first block): one matrix product over all taps
        cols = np.ascontiguousarray(taps.transpose(2, 3, 4, 0, 1)).reshape(t_out * f_out, c_in * k_t * k_f)
        out = cols @ weight.reshape(c_out, -1).T
        return out.reshape(t_out, f_out, c_out)
    out = np.zeros((t_out * f_out, c_out), dtype=np.float32)
    for i in range(k_t):
        for j in range(k_f):
            out += np.ascontiguousarray(taps[i, j]).reshape(-1, c_in) @ weight[:, :, i, j].T
    return out.reshape(t_out, f_out, c_out)


def cumulative_group_norm(
    x: np.ndarray, weight: np.ndarray, eps: float, totals: np.ndarray | None = None
) -> np.ndarray:
    """Gemma3nAudioCumulativeGroupNorm over x [T, F, C]: statistics of all (F, C) values up to each t.

    As in transformers, the variance at t sums (x_s - mean_t)^2 over s <= t using each step's own running
    mean (not a true running variance); reproduced as is. ``totals`` (float64 [rows, sum, squares]) carries
    the statistics of rows seen before ``x`` and is updated, so that a clip normed chunk by chunk gets the
    rows it gets at once (the running sums are added up in the same order).
    """
    t = x.shape[0]
    flat = x.reshape(t, -1)
    if totals is None:
        totals = np.zeros(3, dtype=np.float64)
    count = (totals[0] + np.arange(1, t + 1, dtype=np.float64)) * flat.shape[1]
    sums = np.cumsum(np.concatenate([totals[1:2], flat.sum(axis=1, dtype=np.float64)]))[1:]
    mean = (sums / count).astype(np.float32)
    centered = flat - mean[:, None]
    squares = np.cumsum(np.concatenate([totals[2:3], np.square(centered).sum(axis=1, dtype=np.float64)]))[1:]
    var = squares / count
    if t:
        totals[:] = (totals[0] + t, sums[-1], squares[-1])
    inv = (1.0 / np.sqrt(var + eps)).astype(np.float32)
    centered *= inv[:, None]
    return centered.reshape(x.shape) * weight


# ---------------------------------------------------------------------------------------- attention


def timing_signal(positions: np.ndarray, channels: int) -> np.ndarray:
    """Sinusoidal embedding [len(positions), channels] (sin half, then cos half), as in transformers."""
    n = channels // 2
    increment = math.log(1.0e4) / max(n - 1, 1)
    inv = np.exp(np.arange(n, dtype=np.float32) * np.float32(-increment)).astype(np.float32)
    scaled = positions.astype(np.float32)[:, None] * inv[None, :]
    return np.concatenate([np.sin(scaled), np.cos(scaled)], axis=-1)


def blocks_with_context(x: np.ndarray, n_blocks: int, block: int, left: int, right: int) -> np.ndarray:
    """[T, ...] -> [U, block + left + right, ...]: block u sees x[u*block - left : (u+1)*block + right]."""
    context = block + left + right
    padded = np.zeros((n_blocks * block + left + right, *x.shape[1:]), dtype=x.dtype)
    padded[left : left + x.shape[0]] = x
    strides = (padded.strides[0] * block, *padded.strides)
    shape = (n_blocks, context, *x.shape[1:])
    return np.lib.stride_tricks.as_strided(padded, shape=shape, strides=strides, writeable=False)


def local_causal_mask(block: int, left: int, right: int) -> np.ndarray:
    """[W, C] True where query w may see context slot c: w <= c <= w + left + right."""
    context = block + left + right
    w = np.arange(block)[:, None]
    c = np.arange(context)[None, :]
    return (c >= w) & (c <= w + left + right)


def relative_shift(bd: np.ndarray, context: int) -> np.ndarray:
    """[..., W, F] position logits -> [..., W, C]: out[w, c] = bd[w, c - w] (0 outside), JAX's trick."""
    *lead, w, f = bd.shape
    padded = np.zeros((*lead, w, context + 1), dtype=bd.dtype)
    padded[..., :f] = bd
    flat = padded.reshape(*lead, w * (context + 1))[..., : w * context]
    return flat.reshape(*lead, w, context)


def softmax_(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in place."""
    x -= x.max(axis=-1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=-1, keepdims=True)
    return x


def depthwise_causal_conv(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """x [T, D], weight [D, K] -> out[t] = sum_k weight[:, k] * x[t - K + 1 + k] (zeros before t = 0)."""
    t = x.shape[0]
    k_size = weight.shape[1]
    padded = np.concatenate([np.zeros((k_size - 1, x.shape[1]), dtype=x.dtype), x])
    out = padded[0:t] * weight[:, 0]
    for k in range(1, k_size):
        out += padded[k : k + t] * weight[:, k]
    return out
