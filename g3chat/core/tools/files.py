"""The file tools: read_file, list_dir, search_files (read-only); write_file and edit_file (mutating).

Every path goes through :class:`Roots`. Output is capped so a huge file cannot flood the context. Writes
are atomic (a temporary file renamed into place), and their preview is the exact unified diff.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from g3chat.core.tools.confine import Roots
from g3chat.core.tools.model import ToolError

SKIP_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", ".mypy_cache"})
MAX_SEARCH_FILE = 2 * 1024 * 1024
MAX_MATCHES = 100
MAX_ENTRIES = 500


@dataclass(frozen=True)
class FileTools:
    roots: Roots
    output_limit: int = 16_000

    # ------------------------------------------------------------------------------------ helpers

    def cap(self, text: str) -> str:
        if len(text) <= self.output_limit:
            return text
        cut = len(text) - self.output_limit
        return text[: self.output_limit] + f"\n[... {cut} more characters not shown]"

    def _read_text(self, real: Path, shown: str) -> str:
        if not real.exists():
            raise ToolError(f"{shown}: no such file")
        if real.is_dir():
            raise ToolError(f"{shown}: is a directory (use list_dir)")
        try:
            data = real.read_bytes()
        except OSError as exc:
            raise ToolError(f"{shown}: cannot read: {exc.strerror or exc}") from None
        if b"\x00" in data[:8192]:
            raise ToolError(f"{shown}: is a binary file")
        return data.decode("utf-8", errors="replace")

    # ------------------------------------------------------------------------------------ read-only

    def read_file(self, args: dict[str, Any]) -> str:
        real = self.roots.resolve(args.get("path"))
        text = self._read_text(real, args.get("path") or ".")
        start = int(args.get("start_line") or 1)
        count = args.get("max_lines")
        if start > 1 or count:
            lines = text.splitlines(keepends=True)
            end = len(lines) if not count else start - 1 + int(count)
            text = "".join(lines[max(0, start - 1) : end])
        return self.cap(text)

    def list_dir(self, args: dict[str, Any]) -> str:
        shown = args.get("path") or "."
        real = self.roots.resolve(args.get("path"))
        if not real.is_dir():
            raise ToolError(f"{shown}: not a directory" if real.exists() else f"{shown}: no such directory")
        try:
            entries = sorted(os.scandir(real), key=lambda e: e.name)
        except OSError as exc:
            raise ToolError(f"{shown}: cannot list: {exc.strerror or exc}") from None
        lines = [e.name + ("/" if e.is_dir() else "") for e in entries[:MAX_ENTRIES]]
        if len(entries) > MAX_ENTRIES:
            lines.append(f"[... {len(entries) - MAX_ENTRIES} more entries]")
        return self.cap("\n".join(lines) if lines else "(empty directory)")

    def _walk(self, top: Path, glob: str) -> Iterator[Path]:
        for folder, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
            for name in sorted(files):
                if fnmatch.fnmatch(name, glob):
                    path = Path(folder) / name
                    if path.is_symlink() and not self.roots.contains(path.resolve()):
                        continue  # a link out of the roots is never followed
                    yield path

    def search_files(self, args: dict[str, Any]) -> str:
        pattern = str(args.get("pattern") or "")
        if not pattern:
            raise ToolError("pattern is empty")
        top = self.roots.resolve(args.get("path"))
        found: Callable[[str], object]
        if args.get("regex"):
            try:
                matcher = re.compile(pattern, re.IGNORECASE)
            except re.error as exc:
                raise ToolError(f"invalid regular expression: {exc}") from None
            found = matcher.search
        else:
            needle = pattern.lower()

            def contains(line: str) -> bool:
                return needle in line.lower()

            found = contains

        files = [top] if top.is_file() else self._walk(top, str(args.get("glob") or "*"))
        out: list[str] = []
        for path in files:
            try:
                if path.stat().st_size > MAX_SEARCH_FILE:
                    continue
                data = path.read_bytes()
            except OSError:
                continue
            if b"\x00" in data[:8192]:
                continue
            for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
                if found(line):
                    out.append(f"{self.roots.show(path)}:{number}: {line.strip()[:200]}")
                    if len(out) >= MAX_MATCHES:
                        out.append(f"[stopped after {MAX_MATCHES} matches]")
                        return self.cap("\n".join(out))
        return self.cap("\n".join(out) if out else "no matches")

    # ------------------------------------------------------------------------------------- mutating

    def _planned_write(self, args: dict[str, Any]) -> tuple[Path, str, str | None]:
        real = self.roots.resolve(args.get("path"))
        if real.is_dir():
            raise ToolError(f"{args.get('path')}: is a directory")
        old = self._read_text(real, str(args.get("path"))) if real.exists() else None
        return real, str(args.get("content", "")), old

    def _planned_edit(self, args: dict[str, Any]) -> tuple[Path, str, str]:
        real = self.roots.resolve(args.get("path"))
        old = self._read_text(real, str(args.get("path")))
        find, replace = str(args.get("old_text", "")), str(args.get("new_text", ""))
        if not find:
            raise ToolError("old_text is empty")
        count = old.count(find)
        if count != 1:
            where = "does not occur" if count == 0 else f"occurs {count} times (it must be unique)"
            raise ToolError(f"{args.get('path')}: old_text {where}")
        return real, old.replace(find, replace, 1), old

    def diff(self, real: Path, new: str, old: str | None) -> str:
        shown = self.roots.show(real)
        lines = difflib.unified_diff(
            (old or "").splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile="/dev/null" if old is None else f"a/{shown}",
            tofile=f"b/{shown}",
        )
        text = "".join(
            line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
        )
        return text or f"(no change to {shown})\n"

    def preview_write(self, args: dict[str, Any]) -> str:
        return self.diff(*self._planned_write(args))

    def preview_edit(self, args: dict[str, Any]) -> str:
        return self.diff(*self._planned_edit(args))

    def write_file(self, args: dict[str, Any]) -> str:
        real, new, old = self._planned_write(args)
        self._write(real, new)
        verb = "created" if old is None else "wrote"
        return f"{verb} {self.roots.show(real)} ({len(new.encode('utf-8'))} bytes)"

    def edit_file(self, args: dict[str, Any]) -> str:
        real, new, _old = self._planned_edit(args)
        self._write(real, new)
        return f"edited {self.roots.show(real)}"

    def _write(self, real: Path, text: str) -> None:
        try:
            real.parent.mkdir(parents=True, exist_ok=True)
            mode = real.stat().st_mode & 0o7777 if real.exists() else None
            fd, tmp = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                    fh.write(text)
                if mode is not None:
                    os.chmod(tmp, mode)
                os.replace(tmp, real)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise ToolError(f"{self.roots.show(real)}: cannot write: {exc.strerror or exc}") from None
