"""The catalog of Gemma 3n GGUF variants shipped in models/catalog.toml, as typed objects."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from g3chat.core.errors import G3ChatError, InputError
from g3chat.core.models.arch import ArchFacts

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_FAMILY = "e2b"  # the product is Gemma 3n E2B; E4B is listed as a larger option, never auto-picked
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class CatalogError(G3ChatError):
    """The shipped catalog is malformed (a packaging bug, not the user's doing)."""


@dataclass(frozen=True)
class ModelFamily:
    name: str  # e.g. "gemma-3n-E2B-it"
    family: str  # "e2b"
    label: str
    facts: ArchFacts


@dataclass(frozen=True)
class Variant:
    name: str  # "e2b-q4_k_m": what users type
    model: ModelFamily
    repo: str
    file: str
    quant: str
    size: int
    size_is_estimate: bool
    sha256: str  # "" when unknown until pull time
    quality: int
    repack_share: float
    host_share: float

    @property
    def family(self) -> str:
        return self.model.family

    @property
    def facts(self) -> ArchFacts:
        return self.model.facts


@dataclass(frozen=True)
class Catalog:
    variants: tuple[Variant, ...]
    source: Path

    def get(self, name: str) -> Variant:
        """The variant called ``name`` (case-insensitive); InputError naming the known ones if none."""
        wanted = name.strip().lower()
        for variant in self.variants:
            if variant.name == wanted:
                return variant
        known = ", ".join(v.name for v in self.variants)
        raise InputError(f"unknown model variant {name!r} (known: {known})")

    def find(self, name: str) -> Variant | None:
        wanted = name.strip().lower()
        return next((v for v in self.variants if v.name == wanted), None)

    def by_file(self, repo: str, file: str) -> Variant | None:
        return next((v for v in self.variants if v.repo == repo and v.file == file), None)

    def family(self, family: str) -> list[Variant]:
        """Variants of one family, best quality first."""
        return sorted((v for v in self.variants if v.family == family), key=lambda v: -v.quality)


def _require(entry: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = entry.get(key)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise CatalogError(f"{where}: {key} must be a {kind.__name__}")
    return value


def parse_catalog(text: str, source: Path) -> Catalog:
    """Parse catalog TOML; CatalogError names the file and the entry at fault."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{source}: invalid TOML: {exc}") from None
    families: dict[str, ModelFamily] = {}
    for name, entry in (data.get("model") or {}).items():
        where = f"{source}: model {name}"
        try:
            facts = ArchFacts.from_mapping(entry)
        except (KeyError, TypeError, ValueError) as exc:
            raise CatalogError(f"{where}: missing or bad architecture fact {exc}") from None
        families[name] = ModelFamily(
            name, _require(entry, "family", str, where), _require(entry, "label", str, where), facts
        )
    variants: list[Variant] = []
    for index, entry in enumerate(data.get("variant") or [], start=1):
        where = f"{source}: variant #{index}"
        name = _require(entry, "name", str, where)
        where = f"{source}: variant {name}"
        if not _NAME.match(name):
            raise CatalogError(f"{where}: name must be lower-case letters, digits, '-', '_' or '.'")
        if any(v.name == name for v in variants):
            raise CatalogError(f"{where}: listed twice")
        model = families.get(_require(entry, "model", str, where))
        if model is None:
            raise CatalogError(f"{where}: model {entry['model']!r} has no [model.{entry['model']}] table")
        sha = entry.get("sha256", "")
        if not isinstance(sha, str) or (sha and not _SHA256.match(sha)):
            raise CatalogError(f"{where}: sha256 must be 64 lower-case hex digits or empty")
        size = _require(entry, "size", int, where)
        if size <= 0:
            raise CatalogError(f"{where}: size must be positive")
        variants.append(
            Variant(
                name=name,
                model=model,
                repo=_require(entry, "repo", str, where),
                file=_require(entry, "file", str, where),
                quant=_require(entry, "quant", str, where),
                size=size,
                size_is_estimate=bool(entry.get("estimate", False)),
                sha256=sha,
                quality=_require(entry, "quality", int, where),
                repack_share=float(entry.get("repack_share", 0.0)),
                host_share=float(entry.get("host_share", 0.0)),
            )
        )
    if not variants:
        raise CatalogError(f"{source}: no [[variant]] entries")
    return Catalog(tuple(variants), source)


def load_catalog(path: Path | None = None) -> Catalog:
    """The shipped catalog (or ``path``)."""
    if path is None:
        from g3chat.resources import models_dir

        path = models_dir() / "catalog.toml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read the model catalog: {exc.strerror or exc}") from None
    return parse_catalog(text, path)
