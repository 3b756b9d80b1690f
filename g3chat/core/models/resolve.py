"""Which GGUF file to load, and how.

1. ``--model``, else the configured model: a GGUF path, or a catalog variant name (``e2b-q4_k_m``) that must
   be in the HF cache (verified by sha256 before its first use).
2. Nothing configured: the best installed variant that fits this machine, at the context it fits.
3. Nothing installed: a :class:`PullOffer` for the recommended variant when the Hub can be reached (the
   caller asks, or pulls with ``--yes``); when it cannot, the offline test model, with a notice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from g3chat.core.errors import ModelFileError
from g3chat.core.models.fit import EngineShape
from g3chat.core.testmodel import TEST_MODEL_NOTICE, ensure_test_model

if TYPE_CHECKING:
    from g3chat.core.models.catalog import Variant
    from g3chat.core.models.manager import ModelManager

TEST_MODEL_FALLBACK = (
    "note: no Gemma 3n model is installed and {reason}; using the tiny offline test model (Gemma 3 270M "
    "base), not Gemma 3n — answers are not meaningful (run 'g3chat models pull auto' when online)"
)


@dataclass(frozen=True)
class ResolvedModel:
    path: Path
    name: str
    is_test_model: bool = False
    notice: str | None = None
    variant: str | None = None  # the catalog variant, when the model is one
    n_ctx: int | None = None  # a shorter context the plan needs (None: the configured one)
    n_gpu_layers: int | None = None  # layers to offload per the plan (None: the configured value)
    projector: Path | None = None


@dataclass(frozen=True)
class PullOffer:
    """Nothing is installed: the recommended variant to download (the caller decides whether to)."""

    variant: str
    size: int
    reason: str  # why this one (the pick's explanation)


Resolution = ResolvedModel | PullOffer


def _as_path(spec: str) -> Path:
    path = Path(spec).expanduser()
    if not path.exists():
        hint = "" if _looks_like_path(spec) else " (nor a model variant: see 'g3chat models list')"
        raise ModelFileError(f"{spec}: no such file{hint}")
    return path


def _looks_like_path(spec: str) -> bool:
    return "/" in spec or "\\" in spec or spec.endswith(".gguf") or Path(spec).expanduser().exists()


def resolve_model(
    cli_model: str | None,
    configured: str,
    models_dir: Path,
    *,
    manager: Callable[[], ModelManager] | None = None,
    shape: EngineShape | None = None,
    verify_progress: Callable[[str], None] | None = None,
) -> Resolution:
    """Pick the model. ModelFileError (exit 2) for a path or variant that is not there.

    ``manager`` builds the :class:`~g3chat.core.models.manager.ModelManager` (only when a variant name or
    the automatic choice needs it); ``verify_progress`` is told when a first-use sha256 check starts.
    """
    for spec in (cli_model, configured):
        if not spec:
            continue
        if manager is None or _looks_like_path(spec):
            path = _as_path(spec)
            return ResolvedModel(path=path, name=path.name)
        mgr = manager()
        variant = mgr.catalog.find(spec)
        if variant is None:
            path = _as_path(spec)
            return ResolvedModel(path=path, name=path.name)
        return _installed_variant(mgr, variant, shape, verify_progress)
    if manager is None:
        return _test_model(models_dir, None)
    return _automatic(manager(), models_dir, shape, verify_progress)


def _plan_fields(mgr: ModelManager, variant: Variant, shape: EngineShape | None) -> dict[str, int]:
    """n_ctx / n_gpu_layers from the plan for ``variant`` (nothing to change on a plain CPU machine)."""
    if shape is None:
        return {}
    from g3chat.core.models.pick import choose

    candidates = [c for c in mgr.candidates(only_installed=True) if c.variant == variant]
    choice = choose(candidates, mgr.hardware(), shape)
    plan = choice.recommended
    if plan is None:
        return {}
    fields: dict[str, int] = {}
    if plan.n_ctx < choice.requested_ctx:
        fields["n_ctx"] = plan.n_ctx
    if mgr.hardware().best_gpu is not None:
        fields["n_gpu_layers"] = plan.n_gpu_layers
    return fields


def _installed_variant(
    mgr: ModelManager,
    variant: Variant,
    shape: EngineShape | None,
    verify_progress: Callable[[str], None] | None,
) -> ResolvedModel:
    path = mgr.installed_path(variant)
    if path is None:
        raise ModelFileError(
            f"model {variant.name} is not downloaded: run 'g3chat models pull {variant.name}'"
        )
    if verify_progress is not None and mgr.needs_verification(variant, path):
        verify_progress(variant.name)
    mgr.verify(variant, path)
    fields = _plan_fields(mgr, variant, shape)
    notice = None
    if "n_ctx" in fields:
        notice = (
            f"note: {variant.name} fits this machine only with a {fields['n_ctx']:,}-token context; "
            "using that"
        )
    return ResolvedModel(
        path=path,
        name=variant.name,
        variant=variant.name,
        notice=notice,
        n_ctx=fields.get("n_ctx"),
        n_gpu_layers=fields.get("n_gpu_layers"),
        projector=mgr.projector_path(variant),
    )


def _automatic(
    mgr: ModelManager,
    models_dir: Path,
    shape: EngineShape | None,
    verify_progress: Callable[[str], None] | None,
) -> Resolution:
    from g3chat.core.models.catalog import DEFAULT_FAMILY
    from g3chat.core.models.download import HubUnreachable, probe_hub

    installed = mgr.installed()
    if installed:
        shape = shape or EngineShape(8192)
        best = mgr.choice(shape, only_installed=True, family=None).recommended
        if best is not None:
            return _installed_variant(mgr, best.variant, shape, verify_progress)
        smallest = min((i.variant for i in installed), key=lambda v: v.size)
        resolved = _installed_variant(mgr, smallest, None, verify_progress)
        return replace(resolved, notice=f"note: {smallest.name} may not fit this machine's memory")
    if mgr.hub.offline:
        return _test_model(models_dir, "offline mode is on (HF_HUB_OFFLINE)")
    try:
        probe_hub(mgr.hub, mgr.catalog.family(DEFAULT_FAMILY)[0].repo)
    except HubUnreachable:
        return _test_model(models_dir, "the Hugging Face Hub cannot be reached")
    choice = mgr.choice(shape or EngineShape(8192))
    if choice.recommended is None:
        return _test_model(models_dir, "no Gemma 3n variant fits this machine's memory")
    best_variant = choice.recommended.variant
    return PullOffer(best_variant.name, best_variant.size, choice.explain(mgr.hardware()))


def _test_model(models_dir: Path, reason: str | None) -> ResolvedModel:
    path = ensure_test_model(models_dir)
    notice = TEST_MODEL_NOTICE if reason is None else TEST_MODEL_FALLBACK.format(reason=reason)
    return ResolvedModel(path=path, name=path.name, is_test_model=True, notice=notice)
