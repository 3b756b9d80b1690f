"""Reading a TOML file the user wrote (the config file, a role) so that any problem is one line naming the
file, and the line and column where TOML's parser stopped."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)")


class TomlFileError(ValueError):
    """One line: ``path[:line:column]: what is wrong``."""


def read_toml(path: Path, what: str) -> tuple[dict[str, Any], str]:
    """The table in ``path`` and its text (for finding a key's line later); ``what`` names the file in
    an error ("config", "role")."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TomlFileError(f"{path}: cannot read {what}: {exc}") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        found = _AT.search(str(exc))
        where = f"{path}:{found.group(1)}:{found.group(2)}" if found else str(path)
        raise TomlFileError(f"{where}: invalid TOML: {_AT.sub('', str(exc))}") from None
