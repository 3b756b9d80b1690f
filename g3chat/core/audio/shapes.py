"""The audio tower's parameters: names (transformers', without ``model.``) and shapes for a configuration.

Used to check loaded weights and to read sizes back from them.
"""

from __future__ import annotations

from collections.abc import Mapping

from g3chat.core.audio.config import AudioConfig


def sscp_output_freq(cfg: AudioConfig) -> int:
    """Frequency bins left after the two sub-sampling convolutions (frequency padding 1 on each side)."""
    f = cfg.input_feat_size
    for (_, k_f), (_, s_f) in zip(cfg.sscp_kernels, cfg.sscp_strides):
        f = (f + 2 - k_f) // s_f + 1
    return f


def expected_shapes(cfg: AudioConfig) -> dict[str, tuple[int, ...]]:
    d, c0, c1 = cfg.hidden_size, *cfg.sscp_channels
    (k0t, k0f), (k1t, k1f) = cfg.sscp_kernels
    sscp = "audio_tower.subsample_conv_projection."
    shapes: dict[str, tuple[int, ...]] = {
        sscp + "conv_0.conv.weight": (c0, 1, k0t, k0f),
        sscp + "conv_0.norm.weight": (c0,),
        sscp + "conv_1.conv.weight": (c1, c0, k1t, k1f),
        sscp + "conv_1.norm.weight": (c1,),
        sscp + "input_proj_linear.weight": (d, c1 * sscp_output_freq(cfg)),
    }
    for i in range(cfg.num_layers):
        p = f"audio_tower.conformer.{i}."
        for f in ("ffw_layer_start", "ffw_layer_end"):
            shapes[f"{p}{f}.pre_layer_norm.weight"] = (d,)
            shapes[f"{p}{f}.ffw_layer_1.weight"] = (4 * d, d)
            shapes[f"{p}{f}.ffw_layer_2.weight"] = (d, 4 * d)
            shapes[f"{p}{f}.post_layer_norm.weight"] = (d,)
        a = p + "attention."
        shapes[a + "pre_attn_norm.weight"] = (d,)
        shapes[a + "attn.per_dim_scale"] = (cfg.head_dim,)
        for name in ("relative_position_embedding.pos_proj", "q_proj", "k_proj", "v_proj"):
            shapes[f"{a}attn.{name}.weight"] = (d, d)
        shapes[a + "post.weight"] = (d, d)
        shapes[a + "post_norm.weight"] = (d,)
        c = p + "lconv1d."
        shapes[c + "pre_layer_norm.weight"] = (d,)
        shapes[c + "linear_start.weight"] = (2 * d, d)
        shapes[c + "depthwise_conv1d.weight"] = (d, 1, cfg.conv_kernel_size)
        shapes[c + "conv_norm.weight"] = (d,)
        shapes[c + "linear_end.weight"] = (d, d)
        shapes[p + "norm.weight"] = (d,)
    e = "embed_audio."
    shapes[e + "embedding.weight"] = (cfg.vocab_size, d)
    shapes[e + "hard_embedding_norm.weight"] = (d,)
    shapes[e + "soft_embedding_norm.weight"] = (d,)
    shapes[e + "embedding_projection.weight"] = (cfg.text_hidden_size, d)
    return shapes


def config_from_shapes(shapes: Mapping[str, tuple[int, ...]], base: AudioConfig | None = None) -> AudioConfig:
    """The sizes the weights carry (hidden, layers, channels, kernels, vocab, text hidden) over ``base``."""
    from dataclasses import replace

    base = base or AudioConfig()
    sscp = "audio_tower.subsample_conv_projection."
    conv0 = shapes[sscp + "conv_0.conv.weight"]
    conv1 = shapes[sscp + "conv_1.conv.weight"]
    embedding = shapes["embed_audio.embedding.weight"]
    layers = {int(n.split(".")[2]) for n in shapes if n.startswith("audio_tower.conformer.")}
    first = "audio_tower.conformer.0."
    conv = shapes.get(first + "lconv1d.depthwise_conv1d.weight", (0, 0, base.conv_kernel_size))
    head_dim = shapes.get(first + "attention.attn.per_dim_scale", (base.head_dim,))[0]
    return replace(
        base,
        hidden_size=embedding[1],
        num_heads=max(1, embedding[1] // max(1, head_dim)),
        num_layers=max(layers) + 1 if layers else 0,
        sscp_channels=(conv0[0], conv1[0]),
        sscp_kernels=((conv0[2], conv0[3]), (conv1[2], conv1[3])),
        conv_kernel_size=conv[-1],
        vocab_size=embedding[0],
        text_hidden_size=shapes["embed_audio.embedding_projection.weight"][0],
    )
