"""Which GGUF file to load: ``--model``, else the configured model, else the offline test model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from g3chat.core.errors import ModelFileError
from g3chat.core.testmodel import TEST_MODEL_NOTICE, ensure_test_model


@dataclass(frozen=True)
class ResolvedModel:
    path: Path
    name: str
    is_test_model: bool = False
    notice: str | None = None
    mmproj: Path | None = None


def find_projector(model: Path, cli_mmproj: str | None = None, configured: str = "") -> Path | None:
    """``--mmproj``, else the configured projector, else the one projector GGUF beside the model.

    Beside the model means ``mmproj*.gguf`` / ``*.mmproj.gguf`` in its folder: one that names the model
    (``mmproj-<model stem>…``) wins; otherwise only a single candidate is taken, never a guess among several.
    """
    for spec in (cli_mmproj, configured):
        if spec:
            path = Path(spec).expanduser()
            if not path.exists():
                raise ModelFileError(f"{spec}: no such projector file")
            return path
    folder = model.parent
    if not folder.is_dir():
        return None
    found = sorted({*folder.glob("mmproj*.gguf"), *folder.glob("*.mmproj.gguf")} - {model})
    named = [p for p in found if model.stem.lower() in p.name.lower()]
    if len(named) == 1:
        return named[0]
    return found[0] if len(found) == 1 else None


def _as_path(spec: str) -> Path:
    path = Path(spec).expanduser()
    if not path.exists():
        raise ModelFileError(f"{spec}: no such file")
    return path


def resolve_model(cli_model: str | None, configured: str, models_dir: Path) -> ResolvedModel:
    """Pick the model file. Raises ModelFileError (exit 2) for a path that does not exist."""
    for spec in (cli_model, configured):
        if spec:
            path = _as_path(spec)
            return ResolvedModel(path=path, name=path.name)
    path = ensure_test_model(models_dir)
    return ResolvedModel(path=path, name=path.name, is_test_model=True, notice=TEST_MODEL_NOTICE)
