"""``g3chat ask "… @file …"`` on the real test model: the file's text reaches the prompt and the history;
a file outside the allowed folders is refused (exit 2) before anything is attached or saved."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from g3chat.core.store import Store
from g3chat.core.types import AttachmentPart

pytestmark = pytest.mark.model

FILE_TEXT = "Otters hold hands while they sleep so that they do not drift apart. " * 8


def _ask(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m g3chat ask ARGS`` run from ``cwd`` (the working folder decides what @path may read)."""
    return subprocess.run(
        [sys.executable, "-m", "g3chat", "ask", *args],
        capture_output=True,
        text=True,
        input="",
        env={**os.environ, **env},
        timeout=120,
        cwd=cwd,
    )


def test_at_file_reaches_the_prompt_and_the_history(
    cli_env: dict[str, str], g3chat_home: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "otters.txt").write_text(FILE_TEXT)
    env = {**cli_env, "G3CHAT_TOOLS__AT_FILE_CHARS": "300"}
    plain = _ask(work, env, "--json", "--no-save", "-n", "1", "Summarise @nothere.txt please")
    with_file = _ask(work, env, "--json", "-n", "1", "Summarise @otters.txt please")
    assert plain.returncode == 0 and with_file.returncode == 0, with_file.stderr
    grown = (
        json.loads(with_file.stdout)["usage"]["prompt_tokens"]
        - json.loads(plain.stdout)["usage"]["prompt_tokens"]
    )
    assert grown > 50  # 300 characters of English are some 60 tokens
    notice = f"otters.txt: cut to its first 300 characters (the file has {len(FILE_TEXT)} bytes)"
    assert notice in with_file.stderr
    payload = json.loads(with_file.stdout)
    assert [(a["type"], a["name"], a["chars"]) for a in payload["attachments"]] == [
        ("text_file", "otters.txt", 300)
    ]
    (work / "otters.txt").unlink()  # the history keeps its own copy
    with Store(g3chat_home / "data" / "history.db") as store:
        question = store.history(payload["conversation_id"])[-2]
    (part,) = question.attachments
    assert isinstance(part, AttachmentPart) and Path(part.path).read_text() == FILE_TEXT[:300]
    assert question.text == "Summarise @otters.txt please"


def test_a_file_outside_the_working_folder_is_refused(
    cli_env: dict[str, str], g3chat_home: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "inside.txt").write_text("fine\n")
    (tmp_path / "secret.txt").write_text("keys\n")
    proc = _ask(work, cli_env, "-n", "1", "compare @inside.txt with @../secret.txt")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("g3chat: @../secret.txt: outside the folders g3chat may read")
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    media = g3chat_home / "data" / "media"
    assert not (g3chat_home / "data" / "history.db").exists()  # nothing saved ...
    assert not media.exists() or not any(media.rglob("*.txt"))  # ... nor attached
