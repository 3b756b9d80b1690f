"""Confinement of the file tools to allowed roots (the working directory by default).

A path is resolved the way the operating system would follow it (``..`` collapsed, every symlink on the
way followed) and must land inside one of the roots: ``../x``, ``/etc/passwd`` and a link inside the
folder that points out of it are all refused. Relative paths are taken from the first root.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from g3chat.core.tools.model import ToolError


class Roots:
    """The folders the file tools may touch."""

    def __init__(self, roots: Iterable[Path | str] | None = None) -> None:
        resolved = [Path(r).expanduser().resolve() for r in (roots or [Path.cwd()])]
        if not resolved:
            raise ValueError("at least one root is needed")
        self.roots = list(dict.fromkeys(resolved))
        self.base = self.roots[0]

    def contains(self, real: Path) -> bool:
        return any(real == root or real.is_relative_to(root) for root in self.roots)

    def resolve(self, path: str | os.PathLike[str] | None, *, default: str = ".") -> Path:
        """The real path ``path`` leads to, if it stays inside the roots; else a ToolError."""
        text = default if path is None or str(path) == "" else str(path)
        if "\x00" in text:
            raise ToolError("a path may not contain NUL characters")
        candidate = Path(text)
        if not candidate.is_absolute():
            candidate = self.base / candidate
        try:
            real = candidate.resolve()
        except (OSError, RuntimeError) as exc:  # a symlink loop
            raise ToolError(f"{text}: cannot resolve the path: {exc}") from None
        if not self.contains(real):
            allowed = ", ".join(str(r) for r in self.roots)
            raise ToolError(f"{text}: outside the folders the tools may use ({allowed})")
        return real

    def show(self, real: Path) -> str:
        """``real`` as the model should see it: relative to the first root when inside it."""
        try:
            relative = real.relative_to(self.base)
        except ValueError:
            return str(real)
        return str(relative) if str(relative) != "." else "."
