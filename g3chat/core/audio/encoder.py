"""Gemma 3n's audio tower (a USM conformer) and its embedder into the text model, in numpy.

``AudioEncoder(config, weights)(mel, valid)`` returns one embedding per audio soft token, already in the
text model's hidden space, exactly as transformers' ``Gemma3nModel.get_audio_features`` does:

1. sub-sampling convolution projection: two 3x3 stride-2 convolutions over (time, mel), each followed by a
   cumulative group norm and a ReLU, then a linear projection to the hidden size (4x fewer frames);
2. conformer blocks: half-step feed-forward, chunked local relative-position self-attention (12-frame
   chunks, 12 frames of left context, soft-capped logits), light depthwise convolution, half-step
   feed-forward, RMS norm;
3. reduction: every 4th frame (one soft token per 160 ms);
4. ``embed_audio``: RMS norm, projection to the text hidden size, scale-free RMS norm.

Weights are a dict keyed by transformers' parameter names without the ``model.`` prefix
(``audio_tower.…``, ``embed_audio.…``); see :mod:`g3chat.core.audio.weights`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from g3chat.core.audio import layers as L
from g3chat.core.audio.config import AudioConfig

TOWER = "audio_tower."
SSCP = "audio_tower.subsample_conv_projection."
EMBED = "embed_audio."


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


class _Block:
    """One conformer block's weights, laid out for ``x @ W`` products."""

    def __init__(self, w: Mapping[str, np.ndarray], prefix: str, cfg: AudioConfig) -> None:
        def get(name: str) -> np.ndarray:
            return _f32(w[prefix + name])

        def mat(name: str) -> np.ndarray:  # torch Linear [out, in] -> [in, out]
            return _f32(get(name).T)

        self.ffw = [
            (get(f"{f}.pre_layer_norm.weight"), mat(f"{f}.ffw_layer_1.weight"),
             mat(f"{f}.ffw_layer_2.weight"), get(f"{f}.post_layer_norm.weight"))
            for f in ("ffw_layer_start", "ffw_layer_end")
        ]  # fmt: skip
        a = "attention."
        self.attn_pre_norm = get(a + "pre_attn_norm.weight")
        self.qkv = np.concatenate([mat(a + f"attn.{p}_proj.weight") for p in "qkv"], axis=1)
        self.post = mat(a + "post.weight")
        self.attn_post_norm = get(a + "post_norm.weight")
        q_scale = cfg.head_dim**-0.5 / np.log(2.0)  # 1 / softplus(0)
        self.q_scale = (q_scale * L.softplus(get(a + "attn.per_dim_scale"))).astype(np.float32)
        # The relative-position embeddings depend on the weights only: computed once, [N, H, F].
        left = max(0, cfg.context_left - 1)
        positions = np.arange(left, -cfg.context_right - 1, -1)
        signal = L.timing_signal(positions, cfg.hidden_size)
        pos = signal @ mat(a + "attn.relative_position_embedding.pos_proj.weight")
        self.pos = _f32(pos.reshape(len(positions), cfg.num_heads, cfg.head_dim).transpose(1, 2, 0))
        c = "lconv1d."
        self.conv_pre_norm = get(c + "pre_layer_norm.weight")
        self.conv_start = mat(c + "linear_start.weight")
        self.conv_kernel = _f32(get(c + "depthwise_conv1d.weight").reshape(cfg.hidden_size, -1))
        self.conv_norm = get(c + "conv_norm.weight")
        self.conv_end = mat(c + "linear_end.weight")
        self.norm = get("norm.weight")


@dataclass
class BlockState:
    """What a conformer block remembers of the rows it has seen: the attention's left context (the last
    ``context_left - 1`` rows entering it, and whether each is real) and the depthwise convolution's
    (the last ``kernel - 1`` rows entering it; zeros before the clip's start, as its padding)."""

    x: np.ndarray
    valid: np.ndarray
    h: np.ndarray

    @classmethod
    def empty(cls, cfg: AudioConfig) -> BlockState:
        d = cfg.hidden_size
        taps = np.zeros((cfg.conv_kernel_size - 1, d), np.float32)
        return cls(np.zeros((0, d), np.float32), np.zeros(0, dtype=bool), taps)


class AudioEncoder:
    """The audio tower plus ``embed_audio`` with float32 weights prepared for fast products."""

    def __init__(self, config: AudioConfig, weights: Mapping[str, np.ndarray]) -> None:
        self.config = cfg = config
        self.convs = [
            (_f32(weights[f"{SSCP}conv_{i}.conv.weight"]), _f32(weights[f"{SSCP}conv_{i}.norm.weight"]))
            for i in range(2)
        ]
        self.input_proj = _f32(weights[SSCP + "input_proj_linear.weight"].T)
        self.blocks = [_Block(weights, f"{TOWER}conformer.{i}.", cfg) for i in range(cfg.num_layers)]
        self.soft_norm = _f32(weights[EMBED + "soft_embedding_norm.weight"])
        self.projection = _f32(weights[EMBED + "embedding_projection.weight"].T)
        self.hard_norm = _f32(weights[EMBED + "hard_embedding_norm.weight"])
        self.hard_table = _f32(weights[EMBED + "embedding.weight"])
        self.left = max(0, cfg.context_left - 1)
        self.causal = L.local_causal_mask(cfg.chunk_size, self.left, cfg.context_right)

    # ---------------------------------------------------------------------------------------- API

    def __call__(self, mel: np.ndarray, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Soft-token embeddings [tokens, text_hidden] of mel [frames, bins], and which tokens are real."""
        hidden, keep = self.encode(mel, valid)
        return self.embed_soft(hidden), keep

    def encode(self, mel: np.ndarray, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The audio tower alone: [tokens, hidden] (zeros where the audio was padding), and the mask."""
        cfg = self.config
        x = _f32(mel)[:, :, None]  # [T, F, 1]
        if valid is None:
            valid = np.ones(x.shape[0], dtype=bool)
        for (weight, scale), stride in zip(self.convs, cfg.sscp_strides):
            x = L.conv2d_time_freq(x, weight, stride)
            x = L.cumulative_group_norm(x, scale, cfg.sscp_group_norm_eps)
            np.maximum(x, 0.0, out=x)
        t_sub = x.shape[0]
        x = x.reshape(t_sub, -1) @ self.input_proj
        step = int(np.prod([s[0] for s in cfg.sscp_strides]))
        valid = np.asarray(valid, dtype=bool)[np.minimum(np.arange(t_sub) * step, len(valid) - 1)]
        for block in self.blocks:
            x = self._block(block, x, valid)
        x = x[:: cfg.reduction_factor]
        valid = valid[:: cfg.reduction_factor]
        x[~valid] = 0.0
        return x, valid

    def embed_soft(self, hidden: np.ndarray) -> np.ndarray:
        """embed_audio for encoder outputs: RMS norm, projection, scale-free RMS norm."""
        eps = self.config.rms_norm_eps
        return L.rms_norm(L.rms_norm(hidden, self.soft_norm, eps) @ self.projection, None, eps)

    def embed_hard(self, token_ids: np.ndarray) -> np.ndarray:
        """embed_audio for audio-vocabulary ids (end-of-audio, padding): table row, norm, projection, norm."""
        eps = self.config.rms_norm_eps
        rows = self.hard_table[np.asarray(token_ids) - self.config.vocab_offset]
        return L.rms_norm(L.rms_norm(rows, self.hard_norm, eps) @ self.projection, None, eps)

    # ------------------------------------------------------------------------------------ internals

    def _block(
        self, b: _Block, x: np.ndarray, valid: np.ndarray, state: BlockState | None = None
    ) -> np.ndarray:
        """One conformer block over rows ``x`` that follow the rows ``state`` remembers (none: the clip's
        start); ``state`` is updated to end with these rows. Both causal parts (the attention's left
        context, the convolution's taps) see the remembered rows, so rows computed chunk by chunk equal
        rows computed at once."""
        cfg = self.config
        state = state or BlockState.empty(cfg)
        x = self._ffw(b.ffw[0], x)
        m = len(state.x)  # attention: the new rows' queries over the remembered rows' keys and their own
        seen, seen_valid = np.concatenate([state.x, x]), np.concatenate([state.valid, valid])
        attended = self._attention(b, seen, seen_valid)[m:]
        keep = max(0, len(seen) - self.left)
        state.x, state.valid = seen[keep:], seen_valid[keep:]
        x = x + L.rms_norm(self._clip(attended @ b.post), b.attn_post_norm, 1e-6)
        x = x * valid[:, None]
        # light convolution
        h = L.rms_norm(x, b.conv_pre_norm, cfg.rms_norm_eps) @ b.conv_start
        d = cfg.hidden_size
        h = h[:, :d] * L.sigmoid(h[:, d:])
        taps = np.concatenate([state.h, h])
        state.h = taps[len(taps) - len(state.h) :]
        h = self._clip(L.depthwise_causal_conv(taps, b.conv_kernel)[len(taps) - len(x) :])
        h = L.silu_(L.rms_norm(h, b.conv_norm, cfg.rms_norm_eps))
        x = x + h @ b.conv_end
        x = self._ffw(b.ffw[1], x)
        return L.rms_norm(self._clip(x), b.norm, 1e-6)

    def _ffw(self, weights: tuple[np.ndarray, ...], x: np.ndarray) -> np.ndarray:
        pre, w1, w2, post = weights
        h = L.silu_(L.rms_norm(self._clip(x.copy()), pre, 1e-6) @ w1) @ w2
        return x + L.rms_norm(self._clip(h), post, 1e-6) * np.float32(self.config.residual_weight)

    def _clip(self, x: np.ndarray) -> np.ndarray:
        return L.clip_(x, self.config.gradient_clipping)

    def _attention(self, b: _Block, x: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Chunked local self-attention with relative positions: [T, D] -> [T, D] (before ``post``)."""
        cfg = self.config
        t, n, h, w = x.shape[0], cfg.num_heads, cfg.head_dim, cfg.chunk_size
        left, right = self.left, cfg.context_right
        context = w + left + right
        u = -(-t // w)
        x = self._clip(x.copy())
        qkv = L.rms_norm(x, b.attn_pre_norm, 1e-6) @ b.qkv
        q = (qkv[:, : n * h].reshape(t, n, h) * b.q_scale).astype(np.float32)
        k = qkv[:, n * h : 2 * n * h].reshape(t, n, h)
        v = qkv[:, 2 * n * h :].reshape(t, n, h)
        qb = np.zeros((u * w, n, h), dtype=np.float32)
        qb[:t] = q
        qb = np.ascontiguousarray(qb.reshape(u, w, n, h).transpose(2, 0, 1, 3))  # [N, U, W, H]
        kb = np.ascontiguousarray(L.blocks_with_context(k, u, w, left, right).transpose(2, 0, 3, 1))  # NUHC
        vb = np.ascontiguousarray(L.blocks_with_context(v, u, w, left, right).transpose(2, 0, 1, 3))  # NUCH
        logits = qb @ kb  # [N, U, W, C]
        bd = (qb.reshape(n, u * w, h) @ b.pos).reshape(n, u, w, -1)  # [N, U, W, F]
        logits += L.relative_shift(bd, context)
        cap = np.float32(cfg.logit_cap)
        logits /= cap
        np.tanh(logits, out=logits)
        logits *= cap
        keys_valid = L.blocks_with_context(valid, u, w, left, right)  # [U, C], padding counts as invalid
        allowed = keys_valid[:, None, :] & self.causal[None, :, :]  # [U, W, C]
        np.copyto(logits, L.NEG, where=~allowed[None])
        probs = L.softmax_(logits)
        out = probs @ vb  # [N, U, W, H]
        return out.transpose(1, 2, 0, 3).reshape(u * w, n * h)[:t]
