"""run_shell: one shell command, with a working directory inside the roots, a timeout and an output cap.

The command runs in its own process group so that a timeout kills everything it started. Output
(stdout and stderr together) is read as it comes and only the first ``output_limit`` bytes are kept, so
a command that prints without end cannot exhaust memory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any

from g3chat.core.tools.confine import Roots
from g3chat.core.tools.model import ToolError


@dataclass(frozen=True)
class ShellResult:
    exit_code: int | None  # None: killed at the timeout
    output: str
    dropped: int  # bytes of output beyond the cap
    elapsed_s: float


def run_command(command: str, cwd: str, *, timeout: float, output_limit: int) -> ShellResult:
    started = time.perf_counter()
    try:
        proc = subprocess.Popen(
            command,
            shell=True,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        raise ToolError(f"cannot start the command: {exc.strerror or exc}") from None
    kept = bytearray()
    dropped = 0

    def read() -> None:
        nonlocal dropped
        assert proc.stdout is not None
        # typeshed says IO[bytes]; a PIPE with the default buffering is a BufferedReader, which has read1
        while chunk := proc.stdout.read1(65536):  # type: ignore[attr-defined]
            room = output_limit - len(kept)
            kept.extend(chunk[:room])
            dropped += max(0, len(chunk) - room)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        code: int | None = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        code = None
        _kill_group(proc)
        proc.wait()
    reader.join(timeout=5)  # a grandchild that escaped the group could hold the pipe open
    if proc.stdout is not None:
        proc.stdout.close()
    output = bytes(kept).decode("utf-8", errors="replace")
    return ShellResult(code, output, dropped, time.perf_counter() - started)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


@dataclass(frozen=True)
class ShellTool:
    roots: Roots
    timeout: float = 30.0
    output_limit: int = 16_000

    def preview(self, args: dict[str, Any]) -> str:
        cwd = self.roots.resolve(args.get("cwd"))
        return f"$ {args.get('command', '')}\n(in {cwd}, timeout {self.timeout:g} s)"

    def run(self, args: dict[str, Any]) -> str:
        command = str(args.get("command") or "").strip()
        if not command:
            raise ToolError("command is empty")
        cwd = self.roots.resolve(args.get("cwd"))
        if not cwd.is_dir():
            raise ToolError(f"{args.get('cwd')}: not a directory")
        result = run_command(command, str(cwd), timeout=self.timeout, output_limit=self.output_limit)
        text = result.output
        if result.dropped:
            text += f"\n[... {result.dropped} more bytes of output not shown]"
        if result.exit_code is None:
            raise ToolError(f"timed out after {self.timeout:g} s and was killed; output so far:\n{text}")
        return f"exit code {result.exit_code}\n{text}".rstrip("\n")
