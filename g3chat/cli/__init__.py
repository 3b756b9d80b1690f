"""The ``g3chat`` command line: a thin Typer layer over the core.

Start-up stays fast: this module imports only Typer and g3chat's light modules; every command imports
what it needs (llama_cpp, textual, rich) when it runs. All failures end here: a one-line ``g3chat: …``
message and the error's exit code (2 for bad input); tracebacks only with ``--verbose``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import traceback
from types import ModuleType

import typer

from g3chat.cli.app import app
from g3chat.core.errors import G3ChatError

__all__ = ["app", "main"]


def _error(message: str) -> None:
    sys.stderr.write(f"g3chat: {message}\n")
    sys.stderr.flush()


def _click_modules() -> list[ModuleType]:
    """Click's exception modules: Typer >= 0.2x vendors its own click, older ones use click itself."""
    found = []
    for name in ("typer._click.exceptions", "click.exceptions"):
        with contextlib.suppress(ImportError):
            found.append(importlib.import_module(name))
    return found


_CLICK = _click_modules()
_EXIT = (typer.Exit, *(m.Exit for m in _CLICK if hasattr(m, "Exit")))
_ABORT = (typer.Abort, *(m.Abort for m in _CLICK if hasattr(m, "Abort")))
_NO_ARGS_HELP = tuple(m.NoArgsIsHelpError for m in _CLICK if hasattr(m, "NoArgsIsHelpError"))
_USAGE = tuple(m.UsageError for m in _CLICK)
_CLICK_ERROR = tuple(m.ClickException for m in _CLICK)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in args or os.environ.get("G3CHAT_VERBOSE") == "1"
    code = 0
    try:
        result = app(args=args, prog_name="g3chat", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except _EXIT as exc:
        code = exc.exit_code
    except _ABORT:
        _error("aborted")
        code = 130
    except _NO_ARGS_HELP as exc:
        sys.stdout.write(exc.ctx.get_help() + "\n" if exc.ctx else "")
        code = 0
    except _USAGE as exc:
        command = exc.ctx.command_path if exc.ctx else "g3chat"
        _error(f"error: {exc.format_message()} (see '{command} --help')")
        code = 2
    except _CLICK_ERROR as exc:
        _error(exc.format_message())
        code = exc.exit_code
    except G3ChatError as exc:
        if verbose:
            traceback.print_exc()
        _error(str(exc))
        code = exc.exit_code
    except KeyboardInterrupt:
        _error("interrupted")
        code = 130
    except BrokenPipeError:
        # The reader went away (e.g. `g3chat ask … | head -1`): not an error worth a message.
        sys.stderr.close()
        code = 0
    except Exception as exc:
        if verbose:
            traceback.print_exc()
        _error(f"internal error: {type(exc).__name__}: {exc} (run with --verbose for details)")
        code = 1
    finally:
        with contextlib.suppress(BrokenPipeError, ValueError):
            sys.stdout.flush()
    raise SystemExit(code)
