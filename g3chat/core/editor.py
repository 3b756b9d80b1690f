"""Compose in the user's editor: ``$VISUAL``, else ``$EDITOR``, else nano or vi (notepad on Windows).

The text is written to a temporary ``.md`` file (Markdown: editors highlight it), the editor runs on it,
and what was saved is read back. ``ask --editor`` and the chat UI's edit key share this; what an empty
result means (cancel) is theirs to decide. A command with arguments (``EDITOR="code --wait"``) is split
as a shell would (shlex).

The editor needs the terminal: when stdin or stdout is not one (``git diff | g3chat ask -e``), it gets
``/dev/tty`` instead where there is one, as git does for its commit editor.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

from g3chat.core.errors import InputError

SUFFIX = ".md"


class EditorError(InputError):
    """The editor could not be started, or it failed (exit status not 0). Exit code 2."""


def editor_command(
    environ: Mapping[str, str] | None = None,
    *,
    which: Callable[[str], str | None] = shutil.which,
    windows: bool = os.name == "nt",
) -> list[str]:
    """The editor to run, as argv: ``$VISUAL``, else ``$EDITOR``, else a default found on PATH."""
    env = os.environ if environ is None else environ
    for name in ("VISUAL", "EDITOR"):
        value = env.get(name, "").strip()
        if value:
            try:
                argv = shlex.split(value, posix=not windows)
            except ValueError as exc:
                raise EditorError(f"${name} ({value!r}) cannot be split into a command: {exc}") from None
            if windows:  # non-POSIX splitting keeps the quotes: "C:\Program Files\ed.exe" -w
                argv = [a[1:-1] if len(a) > 1 and a[0] == a[-1] == '"' else a for a in argv]
            if argv:
                return argv
    if windows:
        return ["notepad"]
    return ["nano"] if which("nano") else ["vi"]


@contextmanager
def _terminal() -> Iterator[dict[str, Any]]:
    """stdin/stdout for the editor: the process's own when they are a terminal, else /dev/tty if any."""
    streams: dict[str, Any] = {}
    with ExitStack() as stack:
        for key, fd, mode in (("stdin", 0, "rb"), ("stdout", 1, "wb")):
            try:
                interactive = os.isatty(fd)
            except OSError:
                interactive = False
            if interactive or os.name == "nt":
                continue
            try:
                tty: IO[bytes] = stack.enter_context(open("/dev/tty", mode, buffering=0))
            except OSError:
                continue  # no controlling terminal (a test, a service): the editor gets what we have
            streams[key] = tty
        yield streams


def run_editor(path: Path, environ: Mapping[str, str] | None = None) -> None:
    """Run the editor on ``path`` and wait for it; EditorError when it cannot start or fails.

    ``environ`` is where the editor is looked up (default: os.environ); the editor inherits os.environ.
    """
    argv = editor_command(environ)
    shown = shlex.join(argv)
    try:
        with _terminal() as streams:
            code = subprocess.call([*argv, str(path)], **streams)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise EditorError(f"cannot start the editor {shown!r}: {reason} (set $VISUAL or $EDITOR)") from None
    if code != 0:
        raise EditorError(f"the editor {shown!r} exited with status {code}; nothing was sent")


def edit_text(initial: str, environ: Mapping[str, str] | None = None) -> str:
    """Open the editor on ``initial`` and return what was saved (the file is removed afterwards)."""
    fd, name = tempfile.mkstemp(prefix="g3chat-", suffix=SUFFIX)
    path = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as file:
            file.write(initial)
        run_editor(path, environ)
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise EditorError("the edited text is not valid UTF-8; nothing was sent") from None
        except OSError as exc:  # the editor removed or replaced the file
            raise EditorError(f"cannot read back the edited text: {exc.strerror or exc}") from None
    finally:
        path.unlink(missing_ok=True)
