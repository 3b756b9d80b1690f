"""The core never imports textual or rich: each headless module is imported alone in a fresh interpreter."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import g3chat.core

HEADLESS = sorted(
    ["g3chat.core", "g3chat.config", "g3chat.paths", "g3chat.runtime", "g3chat.resources"]
    + [m.name for m in pkgutil.walk_packages(g3chat.core.__path__, "g3chat.core.")]
)


def test_there_are_core_modules_to_check() -> None:
    assert "g3chat.core.engine.llama" in HEADLESS
    assert "g3chat.core.store" in HEADLESS


@pytest.mark.parametrize("module", HEADLESS)
def test_core_module_imports_without_ui_libraries(module: str) -> None:
    code = (
        f"import importlib, sys; importlib.import_module({module!r}); "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')); "
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"{module} pulled in {proc.stdout.strip()} {proc.stderr[-500:]}"


def test_cli_help_does_not_import_heavy_libraries() -> None:
    """`g3chat --help` stays fast: llama_cpp, textual, PIL and numpy are imported only when needed."""
    code = (
        "import sys\nfrom g3chat.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules}\n"
        "               & {'llama_cpp', 'textual', 'PIL', 'numpy', 'sqlite3'})\n"
        "sys.stderr.write(','.join(heavy))\nsys.exit(1 if heavy else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-500:]
