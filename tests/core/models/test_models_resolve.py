"""Start-up resolution over a real HF cache layout (the test model's bytes stand in for a variant)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from g3chat.core.errors import ModelFileError
from g3chat.core.models.fit import EngineShape
from g3chat.core.models.hubcache import HubConfig, IntegrityError, RepoCache, sha256_of
from g3chat.core.models.manager import ModelManager
from g3chat.core.models.probe import GiB, Hardware
from g3chat.core.models.resolve import PullOffer, ResolvedModel, resolve_model

COMMIT = "a" * 40


@pytest.fixture(scope="module")
def model_sha(test_model_path: Path) -> str:
    return sha256_of(test_model_path)


def manager(tmp_path: Path, ram_gb: float = 16, offline: bool = True) -> ModelManager:
    hub = HubConfig("http://127.0.0.1:9", None, offline, tmp_path / "hf" / "hub")
    hw = Hardware(
        ram_total=int(ram_gb * GiB), ram_available=int(ram_gb * GiB), cpu_features=frozenset({"AVX2"})
    )
    return ModelManager(hub, tmp_path / "state", hardware=lambda: hw)


def install(mgr: ModelManager, name: str, source: Path, sha: str) -> Path:
    """Put ``source`` in the cache as ``name``'s file, as another tool would have."""
    variant = mgr.catalog.get(name)
    cache = RepoCache.of(mgr.hub.cache_dir, variant.repo)
    cache.blob(sha).parent.mkdir(parents=True, exist_ok=True)
    if not cache.blob(sha).exists():
        os.link(source, cache.blob(sha))
    return cache.link(COMMIT, variant.file, sha)


def test_a_configured_variant_must_be_downloaded(tmp_path: Path) -> None:
    mgr = manager(tmp_path)
    with pytest.raises(ModelFileError, match="e2b-q6_k is not downloaded: run 'g3chat models pull e2b-q6_k'"):
        resolve_model(None, "e2b-q6_k", tmp_path, manager=lambda: mgr, shape=EngineShape(2048))
    with pytest.raises(ModelFileError, match="nor a model variant"):
        resolve_model("e2b-q9", "", tmp_path, manager=lambda: mgr, shape=EngineShape(2048))


def test_the_best_installed_variant_is_verified_once_then_used(
    tmp_path: Path, test_model_path: Path, model_sha: str
) -> None:
    mgr = manager(tmp_path)
    install(mgr, "e2b-q3_k_m", test_model_path, model_sha)
    path = install(mgr, "e2b-q4_k_m", test_model_path, model_sha)
    checks: list[str] = []
    first = resolve_model(
        None, "", tmp_path, manager=lambda: mgr, shape=EngineShape(2048), verify_progress=checks.append
    )
    assert isinstance(first, ResolvedModel)
    assert (first.variant, first.path, first.is_test_model) == ("e2b-q4_k_m", path, False)
    assert checks == ["e2b-q4_k_m"]  # hashed before its first use...
    again = resolve_model(
        None, "", tmp_path, manager=lambda: mgr, shape=EngineShape(2048), verify_progress=checks.append
    )
    assert isinstance(again, ResolvedModel) and checks == ["e2b-q4_k_m"]  # ...and only then
    named = resolve_model("e2b-q3_k_m", "", tmp_path, manager=lambda: mgr, shape=EngineShape(2048))
    assert isinstance(named, ResolvedModel) and named.variant == "e2b-q3_k_m"


def test_a_corrupt_cached_file_is_refused(tmp_path: Path, test_model_path: Path) -> None:
    mgr = manager(tmp_path)
    install(mgr, "e2b-q4_k_m", test_model_path, "0" * 64)  # its bytes do not hash to its blob name
    with pytest.raises(IntegrityError, match=r"e2b-q4_k_m: .* is corrupt .*g3chat models rm e2b-q4_k_m"):
        resolve_model(None, "e2b-q4_k_m", tmp_path, manager=lambda: mgr, shape=EngineShape(2048))


def test_nothing_installed_offline_falls_back_to_the_test_model(
    tmp_path: Path, test_model_path: Path
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    os.link(test_model_path, models / test_model_path.name)
    result = resolve_model(None, "", models, manager=lambda: manager(tmp_path), shape=EngineShape(2048))
    assert isinstance(result, ResolvedModel) and result.is_test_model
    assert result.notice is not None and "offline mode is on" in result.notice
    assert "tiny offline test model" in result.notice and "\n" not in result.notice
    unreachable = resolve_model(
        None, "", models, manager=lambda: manager(tmp_path, offline=False), shape=EngineShape(2048)
    )
    assert isinstance(unreachable, ResolvedModel) and unreachable.is_test_model
    assert unreachable.notice is not None and "cannot be reached" in unreachable.notice
    assert not isinstance(unreachable, PullOffer)


def test_too_small_a_machine_still_runs_the_smallest_installed_with_a_warning(
    tmp_path: Path, test_model_path: Path, model_sha: str
) -> None:
    mgr = manager(tmp_path, ram_gb=0.25)
    install(mgr, "e2b-q4_k_m", test_model_path, model_sha)
    result = resolve_model(None, "", tmp_path, manager=lambda: mgr, shape=EngineShape(2048))
    assert isinstance(result, ResolvedModel) and result.variant == "e2b-q4_k_m"
    assert result.notice == "note: e2b-q4_k_m may not fit this machine's memory"
