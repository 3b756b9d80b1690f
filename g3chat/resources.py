"""Data shipped with g3chat: the model catalog (models/) and the built-in themes (themes/).

In a wheel they live inside the package as ``g3chat/_data/{models,themes}``; in a source checkout (and an
editable install) they are the top-level ``models/`` and ``themes/`` folders of the repository.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Return the directory holding shipped data ``name`` ("models" or "themes")."""
    packaged = _PACKAGE_DIR / "_data" / name
    if packaged.is_dir():
        return packaged
    checkout = _PACKAGE_DIR.parent / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"g3chat's {name}/ data is missing (looked in {packaged} and {checkout})")


def models_dir() -> Path:
    return data_dir("models")


def themes_dir() -> Path:
    return data_dir("themes")
