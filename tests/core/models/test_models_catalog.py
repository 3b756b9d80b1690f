"""The shipped catalog parses into typed variants with the published figures; bad catalogs say where."""

from __future__ import annotations

from pathlib import Path

import pytest

from g3chat.core.errors import InputError
from g3chat.core.models.catalog import CatalogError, load_catalog, parse_catalog

PUBLISHED = {  # the figures the issue quotes from the Hub
    ("unsloth/gemma-3n-E2B-it-GGUF", "gemma-3n-E2B-it-Q3_K_M.gguf"): 2_462_556_160,
    ("unsloth/gemma-3n-E2B-it-GGUF", "gemma-3n-E2B-it-Q4_K_M.gguf"): 3_026_881_888,
    ("unsloth/gemma-3n-E2B-it-GGUF", "gemma-3n-E2B-it-Q6_K.gguf"): 4_208_594_272,
    ("ggml-org/gemma-3n-E2B-it-GGUF", "gemma-3n-E2B-it-Q8_0.gguf"): 4_788_112_064,
    ("unsloth/gemma-3n-E4B-it-GGUF", "gemma-3n-E4B-it-Q4_K_M.gguf"): 4_539_054_208,
}

MINIMAL_MODEL = """
[model.m]
family = "e2b"
label = "M"
architecture = "gemma3n"
context_length = 32768
n_layer = 30
n_layer_kv = 20
swa_layers_kv = 16
n_swa = 512
n_head = 8
n_head_kv = 2
head_dim = 256
n_embd = 2048
n_ff = 8192
n_vocab = 262400
"""

VARIANT = """
[[variant]]
name = "{name}"
model = "m"
repo = "o/r"
file = "f.gguf"
quant = "Q4_K_M"
size = {size}
sha256 = "{sha}"
quality = 4
"""


def test_shipped_catalog_has_the_e2b_ladder_and_published_figures() -> None:
    catalog = load_catalog()
    e2b = catalog.family("e2b")
    assert [v.quant for v in e2b] == ["F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K"]
    assert [v.quality for v in e2b] == sorted((v.quality for v in e2b), reverse=True)
    for (repo, file), size in PUBLISHED.items():
        variant = catalog.by_file(repo, file)
        assert variant is not None and variant.size == size and not variant.size_is_estimate
    q8 = catalog.get("e2b-q8_0")
    assert q8.sha256 == "038a47c482e7af3009c462b56a7592e1ade3c7862540717aa1d9dee1760c337b"
    unpublished = {v.name for v in catalog.variants if v.size_is_estimate}
    assert unpublished == {"e2b-q2_k", "e2b-q5_k_m", "e2b-f16", "e4b-q8_0"}
    assert {v.family for v in catalog.variants} == {"e2b", "e4b"}


def test_gemma3n_facts_match_llama_cpp_loader() -> None:
    facts = load_catalog().get("e2b-q4_k_m").facts
    # models/gemma3n.cpp: 20 of the 30 layers own KV; every 5th layer is global (4 of those 20).
    assert (facts.n_layer, facts.n_layer_kv, facts.swa_layers_kv) == (30, 20, 16)
    assert (facts.n_head_kv, facts.head_dim_k, facts.n_swa) == (2, 256, 512)
    assert facts.kv_bytes_per_cell == 2 * (256 + 256) * 2  # 2 KV heads x (K + V) x f16


def test_lookup_is_case_insensitive_and_unknown_names_list_the_known(tmp_path: Path) -> None:
    catalog = load_catalog()
    assert catalog.get(" E2B-Q4_K_M ").quant == "Q4_K_M"
    with pytest.raises(InputError, match=r"unknown model variant 'e2b-q9'.*e2b-q4_k_m"):
        catalog.get("e2b-q9")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[variant]", "invalid TOML"),
        (MINIMAL_MODEL, "no \\[\\[variant\\]\\] entries"),
        (MINIMAL_MODEL + VARIANT.format(name="a", size=10, sha="xyz"), "variant a: sha256 must be"),
        (MINIMAL_MODEL + VARIANT.format(name="a", size=-1, sha=""), "variant a: size must be positive"),
        (MINIMAL_MODEL + VARIANT.format(name="Bad Name", size=1, sha=""), "lower-case"),
        (MINIMAL_MODEL + VARIANT.format(name="a", size=1, sha="") * 2, "variant a: listed twice"),
        (VARIANT.format(name="a", size=1, sha=""), "has no \\[model.m\\] table"),
        (MINIMAL_MODEL.replace("n_head = 8\n", ""), "model m: missing or bad architecture fact"),
    ],
)
def test_malformed_catalogs_name_file_and_entry(tmp_path: Path, text: str, expected: str) -> None:
    source = tmp_path / "catalog.toml"
    with pytest.raises(CatalogError, match=expected) as info:
        parse_catalog(text, source)
    assert str(source) in str(info.value)


def test_minimal_catalog_parses(tmp_path: Path) -> None:
    text = MINIMAL_MODEL + VARIANT.format(name="a", size=5, sha="a" * 64)
    catalog = parse_catalog(text, tmp_path / "c.toml")
    (variant,) = catalog.variants
    assert (variant.name, variant.size, variant.sha256, variant.family) == ("a", 5, "a" * 64, "e2b")
    assert variant.repack_share == 0.0 and not variant.size_is_estimate
