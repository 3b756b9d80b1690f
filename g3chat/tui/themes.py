"""Themes as data: one TOML file per theme, built-in (themes/) and the user's (the themes folder).

A file holds ``name``, ``dark`` and a ``[colors]`` table of Textual's theme fields. Loading returns
``(loaded, failed)`` so one broken file is reported and skipped, never fatal.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.color import Color, ColorParseError
from textual.theme import Theme

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

COLOR_FIELDS = (
    "primary",
    "secondary",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
    "success",
    "warning",
    "error",
)
DEFAULT_THEME = "g3-dark"


class ThemeFileError(ValueError):
    """A theme file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class FailedTheme:
    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path.name}: {self.reason}"


def theme_from_file(path: Path) -> Theme:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ThemeFileError(f"cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ThemeFileError(f"invalid TOML: {exc}") from None
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name.strip():
        raise ThemeFileError("name must be a non-empty string")
    dark = data.get("dark", True)
    if not isinstance(dark, bool):
        raise ThemeFileError("dark must be true or false")
    colors = data.get("colors")
    if not isinstance(colors, dict):
        raise ThemeFileError("a [colors] table is required")
    unknown = sorted(set(colors) - set(COLOR_FIELDS))
    if unknown:
        raise ThemeFileError(f"unknown colour {unknown[0]!r} (known: {', '.join(COLOR_FIELDS)})")
    if "primary" not in colors:
        raise ThemeFileError("colors.primary is required")
    for key, value in colors.items():
        try:
            Color.parse(value)
        except (ColorParseError, TypeError, ValueError):
            raise ThemeFileError(f"colors.{key} = {value!r} is not a colour") from None
    named: dict[str, Any] = {k: str(v) for k, v in colors.items()}  # primary, secondary, ...
    return Theme(name=name.strip(), dark=dark, **named)


def load_themes(folders: Iterable[Path]) -> tuple[list[Theme], list[FailedTheme]]:
    """Every ``*.toml`` theme in ``folders`` (later folders override earlier ones by name)."""
    loaded: dict[str, Theme] = {}
    failed: list[FailedTheme] = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            try:
                theme = theme_from_file(path)
            except ThemeFileError as exc:
                failed.append(FailedTheme(path, str(exc)))
                continue
            loaded[theme.name] = theme
    return list(loaded.values()), failed
