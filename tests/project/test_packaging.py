"""models/, themes/ and roles/ ship inside the wheel and are found from an installed (non-editable) copy."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_wheel_carries_data_and_finds_it(tmp_path: Path) -> None:
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path / "dist"), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("g3chat-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for folder in ("models", "themes", "roles"):
        shipped = {Path(n).name for n in names if n.startswith(f"g3chat/_data/{folder}/")}
        in_repo = {p.name for p in (REPO / folder).iterdir() if p.is_file()}
        assert in_repo and in_repo <= shipped
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    code = "import g3chat.resources as r; print(r.models_dir()); print(r.themes_dir()); print(r.roles_dir())"
    found = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(target)},
        cwd=tmp_path,
    )
    assert found.returncode == 0, found.stderr
    folders = found.stdout.split()
    assert len(folders) == 3 and all(folder.startswith(str(target)) for folder in folders)
