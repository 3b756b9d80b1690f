"""The audio encoder's hyper-parameters.

The defaults are Gemma 3n E2B's (``audio_config`` in google/gemma-3n-E2B-it's config.json, the same for
E4B); a smaller configuration is used by the tests. Sizes that the weights themselves carry (hidden size,
layer count, channels, text hidden size) are checked against the weights when they are loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AudioConfig:
    hidden_size: int = 1536
    num_layers: int = 12
    num_heads: int = 8
    input_feat_size: int = 128
    sscp_channels: tuple[int, int] = (128, 32)
    sscp_kernels: tuple[tuple[int, int], tuple[int, int]] = ((3, 3), (3, 3))
    sscp_strides: tuple[tuple[int, int], tuple[int, int]] = ((2, 2), (2, 2))
    sscp_group_norm_eps: float = 1e-3
    chunk_size: int = 12
    context_left: int = 13
    context_right: int = 0
    logit_cap: float = 50.0
    conv_kernel_size: int = 5
    reduction_factor: int = 4
    residual_weight: float = 0.5
    gradient_clipping: float = 1e10
    rms_norm_eps: float = 1e-6
    # The audio embedder (embed_audio) that maps encoder outputs into the text model's space.
    text_hidden_size: int = 2048
    vocab_size: int = 128
    vocab_offset: int = 262_272
    # The prompt: Gemma3nProcessor's audio_seq_length (soft tokens per clip, padding included).
    soft_tokens: int = 188

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @classmethod
    def from_hf(cls, audio_config: dict[str, Any], text_hidden_size: int | None = None) -> AudioConfig:
        """From a transformers ``Gemma3nAudioConfig`` dict (``config.json``'s ``audio_config``)."""
        base = cls()
        return cls(
            hidden_size=audio_config.get("hidden_size", base.hidden_size),
            num_layers=audio_config.get("conf_num_hidden_layers", base.num_layers),
            num_heads=audio_config.get("conf_num_attention_heads", base.num_heads),
            input_feat_size=audio_config.get("input_feat_size", base.input_feat_size),
            sscp_channels=tuple(audio_config.get("sscp_conv_channel_size", base.sscp_channels)),
            sscp_kernels=_pairs(audio_config.get("sscp_conv_kernel_size", base.sscp_kernels)),
            sscp_strides=_pairs(audio_config.get("sscp_conv_stride_size", base.sscp_strides)),
            sscp_group_norm_eps=audio_config.get("sscp_conv_group_norm_eps", base.sscp_group_norm_eps),
            chunk_size=audio_config.get("conf_attention_chunk_size", base.chunk_size),
            context_left=audio_config.get("conf_attention_context_left", base.context_left),
            context_right=audio_config.get("conf_attention_context_right", base.context_right),
            logit_cap=audio_config.get("conf_attention_logit_cap", base.logit_cap),
            conv_kernel_size=audio_config.get("conf_conv_kernel_size", base.conv_kernel_size),
            reduction_factor=audio_config.get("conf_reduction_factor", base.reduction_factor),
            residual_weight=audio_config.get("conf_residual_weight", base.residual_weight),
            gradient_clipping=audio_config.get("gradient_clipping", base.gradient_clipping),
            rms_norm_eps=audio_config.get("rms_norm_eps", base.rms_norm_eps),
            text_hidden_size=text_hidden_size or base.text_hidden_size,
            vocab_size=audio_config.get("vocab_size", base.vocab_size),
            vocab_offset=audio_config.get("vocab_offset", base.vocab_offset),
        )

    def to_hf(self) -> dict[str, Any]:
        """The transformers ``Gemma3nAudioConfig`` keyword arguments for this configuration."""
        return {
            "hidden_size": self.hidden_size,
            "conf_num_hidden_layers": self.num_layers,
            "conf_num_attention_heads": self.num_heads,
            "input_feat_size": self.input_feat_size,
            "sscp_conv_channel_size": list(self.sscp_channels),
            "sscp_conv_kernel_size": [list(k) for k in self.sscp_kernels],
            "sscp_conv_stride_size": [list(s) for s in self.sscp_strides],
            "sscp_conv_group_norm_eps": self.sscp_group_norm_eps,
            "conf_attention_chunk_size": self.chunk_size,
            "conf_attention_context_left": self.context_left,
            "conf_attention_context_right": self.context_right,
            "conf_attention_logit_cap": self.logit_cap,
            "conf_conv_kernel_size": self.conv_kernel_size,
            "conf_reduction_factor": self.reduction_factor,
            "conf_residual_weight": self.residual_weight,
            "gradient_clipping": self.gradient_clipping,
            "rms_norm_eps": self.rms_norm_eps,
            "vocab_size": self.vocab_size,
            "vocab_offset": self.vocab_offset,
        }


def _pairs(value: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    (a, b), (c, d) = ([int(v) for v in pair] for pair in value)
    return (a, b), (c, d)
