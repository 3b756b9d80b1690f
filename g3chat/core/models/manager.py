"""The model manager: the catalog, what is installed in the HF cache, what fits here, pulls and removals.

One object ties the pieces together for the CLI and start-up resolution. Hardware is probed once per
manager (lazily); Hub listings are fetched once per repository.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from g3chat.core.errors import InputError, ModelFileError
from g3chat.core.gguf_file import inspect_gguf
from g3chat.core.models.arch import ArchFacts
from g3chat.core.models.catalog import DEFAULT_FAMILY, Catalog, Variant, load_catalog
from g3chat.core.models.download import (
    DownloadError,
    ProgressCallback,
    RemoteFile,
    download,
    find_projector,
    repo_listing,
)
from g3chat.core.models.fit import EngineShape, Weights
from g3chat.core.models.hubcache import HubConfig, RepoCache, VerifiedStamps, expected_sha256
from g3chat.core.models.pick import Candidate, Choice, choose
from g3chat.core.models.probe import Hardware, probe


@dataclass(frozen=True)
class Installed:
    variant: Variant
    path: Path  # the snapshot path (a symlink into blobs/ in the HF cache)
    projector: Path | None = None


@dataclass(frozen=True)
class PullResult:
    variant: Variant
    path: Path
    projector: Path | None
    reused: bool  # already in the HF cache: nothing was downloaded


class ModelManager:
    def __init__(
        self,
        hub: HubConfig,
        state_dir: Path,
        *,
        catalog: Catalog | None = None,
        hardware: Callable[[], Hardware] | None = None,
    ) -> None:
        self.hub = hub
        self.state_dir = state_dir
        self.catalog = catalog or load_catalog()
        self.stamps = VerifiedStamps(state_dir / "verified.json")
        self._probe = hardware or (lambda: probe(self.hub.cache_dir))
        self._hardware: Hardware | None = None
        self._listings: dict[str, dict[str, RemoteFile]] = {}

    # ------------------------------------------------------------------------------- what is here
    def hardware(self) -> Hardware:
        if self._hardware is None:
            self._hardware = self._probe()
        return self._hardware

    def installed_path(self, variant: Variant) -> Path | None:
        return RepoCache.of(self.hub.cache_dir, variant.repo).find(variant.file)

    def projector_path(self, variant: Variant) -> Path | None:
        """A vision projector (mmproj*.gguf) cached beside the model, if any."""
        model = self.installed_path(variant)
        if model is None:
            return None
        found = sorted(p for p in model.parent.glob("mmproj*.gguf") if p.is_file())
        return found[0] if found else None

    def installed(self) -> list[Installed]:
        found = []
        for variant in self.catalog.variants:
            path = self.installed_path(variant)
            if path is not None:
                found.append(Installed(variant, path, self.projector_path(variant)))
        return found

    def partial_bytes(self, variant: Variant) -> int:
        """Bytes of an interrupted download of ``variant`` (0 when none)."""
        sha = variant.sha256 or self._known().get(f"{variant.repo}/{variant.file}", {}).get("sha256", "")
        return RepoCache.of(self.hub.cache_dir, variant.repo).partial_size(str(sha))

    def facts_and_weights(self, variant: Variant) -> tuple[ArchFacts, Weights, bool]:
        """Architecture and weight layout: exact from the GGUF header once installed, else the catalog's."""
        features = self.hardware().cpu_features
        path = self.installed_path(variant)
        if path is not None:
            try:
                summary = inspect_gguf(path)
            except ModelFileError:
                summary = None
            facts = ArchFacts.from_gguf(summary) if summary is not None else None
            if summary is not None and facts is not None:
                return facts, Weights.from_gguf(summary, features), True
        return variant.facts, Weights.from_catalog(variant, variant.facts, features), path is not None

    def candidates(self, *, only_installed: bool = False, with_projector: bool = False) -> list[Candidate]:
        found = []
        for variant in sorted(self.catalog.variants, key=lambda v: (v.family, -v.quality)):
            facts, weights, installed = self.facts_and_weights(variant)
            if only_installed and not installed:
                continue
            projector = self.projector_path(variant) if with_projector else None
            size = projector.stat().st_size if projector is not None else 0
            found.append(Candidate(variant, facts, weights, installed, size))
        return found

    def choice(
        self, shape: EngineShape, *, only_installed: bool = False, family: str | None = DEFAULT_FAMILY
    ) -> Choice:
        return choose(self.candidates(only_installed=only_installed), self.hardware(), shape, family=family)

    # --------------------------------------------------------------------------------- the Hub
    def listing(self, repo: str) -> dict[str, RemoteFile]:
        if repo not in self._listings:
            self._listings[repo] = repo_listing(self.hub, repo)
            self._remember(self._listings[repo].values())
        return self._listings[repo]

    def remote(self, variant: Variant) -> RemoteFile:
        files = self.listing(variant.repo)
        remote = files.get(variant.file)
        if remote is None:
            raise DownloadError(f"{variant.repo} has no file {variant.file} (the catalog is out of date)")
        return remote

    def _known_path(self) -> Path:
        return self.state_dir / "hub-files.json"

    def _known(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads(self._known_path().read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _remember(self, files: Iterable[RemoteFile]) -> None:
        data = self._known()
        for f in files:
            data[f"{f.repo}/{f.filename}"] = {"sha256": f.sha256, "size": f.size, "commit": f.commit}
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self._known_path().with_name(f".hub-files.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, self._known_path())

    def pull(
        self,
        variant: Variant,
        *,
        projector: bool = False,
        progress: ProgressCallback | None = None,
        disk_free: Callable[[Path], int] | None = None,
    ) -> PullResult:
        """Download ``variant`` (and its repo's projector) verified into the HF cache, or reuse it there."""
        existing = self.installed_path(variant)
        if existing is not None and (self.hub.offline or not projector):
            self.verify(variant, existing)
            return PullResult(variant, existing, self.projector_path(variant), reused=True)
        remote = self.remote(variant)

        def fetch(remote: RemoteFile) -> Path:
            if disk_free is None:
                return download(self.hub, remote, self.stamps, progress=progress)
            return download(self.hub, remote, self.stamps, progress=progress, disk_free=disk_free)

        reused = RepoCache.of(self.hub.cache_dir, variant.repo).blob(remote.sha256).exists()
        path = fetch(remote)
        projector_path = None
        if projector:
            found = find_projector(self.listing(variant.repo))
            if found is None:
                raise InputError(f"{variant.repo} publishes no vision projector (mmproj)")
            projector_path = fetch(found)
        return PullResult(variant, path, projector_path, reused=reused)

    def verify(self, variant: Variant, path: Path, progress: Callable[[int], None] | None = None) -> None:
        """sha256 check before first use (remembered afterwards)."""
        self.stamps.ensure(path, expected_sha256(path, variant.sha256), variant.name, progress)

    def needs_verification(self, variant: Variant, path: Path) -> bool:
        sha = expected_sha256(path, variant.sha256)
        return bool(sha) and not self.stamps.is_verified(path, sha)

    def remove(self, variant: Variant) -> int:
        """Delete ``variant`` from the cache (its snapshot links, its blob, any partial); bytes freed."""
        cache = RepoCache.of(self.hub.cache_dir, variant.repo)
        freed = 0
        blobs: set[Path] = set()
        snapshots = cache.root / "snapshots"
        for pointer in snapshots.glob(f"*/{variant.file}") if snapshots.exists() else []:
            target = pointer.resolve()
            if target != pointer:
                blobs.add(target)
            else:
                freed += pointer.stat().st_size
            self.stamps.forget(pointer)
            pointer.unlink()
        still_used = {p.resolve() for p in snapshots.glob("*/*")} if snapshots.exists() else set()
        for blob in blobs - still_used:
            if blob.exists():
                freed += blob.stat().st_size
                blob.unlink()
        sha = variant.sha256 or str(self._known().get(f"{variant.repo}/{variant.file}", {}).get("sha256", ""))
        partial = cache.partial(sha) if sha else None
        if partial is not None and partial.exists():
            freed += partial.stat().st_size
            partial.unlink()
        return freed
