"""Data shipped with g3chat: the model catalog (models/), the built-in themes (themes/) and roles (roles/).

In a wheel they live inside the package as ``g3chat/_data/{models,themes,roles}``; in a source checkout (and
an editable install) they are the top-level ``models/``, ``themes/`` and ``roles/`` folders of the repository.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Return the directory holding shipped data ``name`` ("models", "themes" or "roles")."""
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


def roles_dir() -> Path:
    return data_dir("roles")
