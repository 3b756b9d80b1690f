"""Built-in tools: confinement escapes, file tools, the shell's timeout and output cap, the calculator."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from g3chat.core.tools.builtins import BuiltinSettings, builtin_tools
from g3chat.core.tools.calc import evaluate
from g3chat.core.tools.confine import Roots
from g3chat.core.tools.model import Tool, ToolError
from g3chat.core.tools.shell import run_command


@pytest.fixture
def work(tmp_path: Path) -> Path:
    root = tmp_path / "work"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("print('hi')\n# TODO: tidy up\n")
    (root / "notes.md").write_text("first\nsecond TODO\nthird\n")
    (tmp_path / "secret.txt").write_text("the password is swordfish\n")
    return root


def tools_for(root: Path, **settings: Any) -> dict[str, Tool]:
    return {t.name: t for t in builtin_tools(Roots([root]), BuiltinSettings(**settings))}


@pytest.mark.parametrize(
    "path", ["../secret.txt", "src/../../secret.txt", "SECRET_ABS", "link/secret.txt", "leak"]
)
def test_escapes_are_refused(work: Path, path: str) -> None:
    (work / "link").symlink_to(work.parent, target_is_directory=True)
    (work / "leak").symlink_to(work.parent / "secret.txt")
    path = str(work.parent / "secret.txt") if path == "SECRET_ABS" else path
    tools = tools_for(work)
    for name, args in [
        ("read_file", {"path": path}),
        ("list_dir", {"path": path}),
        ("search_files", {"pattern": "password", "path": path}),
        ("write_file", {"path": path, "content": "x"}),
        ("edit_file", {"path": path, "old_text": "password", "new_text": "x"}),
    ]:
        with pytest.raises(ToolError, match="outside the folders"):
            tools[name].run(args)
    assert (work.parent / "secret.txt").read_text() == "the password is swordfish\n"


def test_inside_paths_work_including_links_that_stay_inside(work: Path) -> None:
    (work / "alias.md").symlink_to(work / "notes.md")
    tools = tools_for(work)
    assert tools["read_file"].run({"path": "alias.md"}) == "first\nsecond TODO\nthird\n"
    assert tools["read_file"].run({"path": str(work / "src" / "app.py")}).startswith("print")
    assert (
        tools["read_file"].run({"path": "src/../notes.md", "start_line": 2, "max_lines": 1})
        == "second TODO\n"
    )
    assert tools["list_dir"].run({}).splitlines() == ["alias.md", "notes.md", "src/"]


def test_search_skips_links_out_and_reports_matches(work: Path) -> None:
    (work / "leak.txt").symlink_to(work.parent / "secret.txt")
    (work / "src" / "blob.bin").write_bytes(b"TODO\x00\x01")
    found = tools_for(work)["search_files"].run({"pattern": "todo"}).splitlines()
    assert found == ["notes.md:2: second TODO", "src/app.py:2: # TODO: tidy up"]
    assert tools_for(work)["search_files"].run({"pattern": "password"}) == "no matches"
    assert (
        tools_for(work)["search_files"].run({"pattern": r"T.DO:", "regex": True})
        == "src/app.py:2: # TODO: tidy up"
    )


def test_read_errors_and_output_cap(work: Path) -> None:
    (work / "big.txt").write_text("x" * 5000)
    tools = tools_for(work, output_limit=1000)
    out = tools["read_file"].run({"path": "big.txt"})
    assert out.startswith("x" * 1000) and "4000 more characters" in out and len(out) < 1100
    with pytest.raises(ToolError, match="no such file"):
        tools["read_file"].run({"path": "nope.txt"})
    with pytest.raises(ToolError, match="is a directory"):
        tools["read_file"].run({"path": "src"})


def test_write_and_edit_preview_the_exact_diff_then_apply_it(work: Path) -> None:
    tools = tools_for(work)
    preview = tools["edit_file"].describe({"path": "notes.md", "old_text": "second", "new_text": "2nd"})
    assert preview == (
        "--- a/notes.md\n+++ b/notes.md\n@@ -1,3 +1,3 @@\n first\n-second TODO\n+2nd TODO\n third\n"
    )
    assert (work / "notes.md").read_text() == "first\nsecond TODO\nthird\n"  # a preview changes nothing
    assert (
        tools["edit_file"].run({"path": "notes.md", "old_text": "second", "new_text": "2nd"})
        == "edited notes.md"
    )
    assert (work / "notes.md").read_text() == "first\n2nd TODO\nthird\n"
    with pytest.raises(ToolError, match="does not occur"):
        tools["edit_file"].describe({"path": "notes.md", "old_text": "second", "new_text": "x"})
    new = tools["write_file"].describe({"path": "docs/new.txt", "content": "hello"})
    assert (
        new.startswith("--- /dev/null\n+++ b/docs/new.txt\n")
        and "+hello\n\\ No newline at end of file" in new
    )
    assert not (work / "docs").exists()
    assert (
        tools["write_file"]
        .run({"path": "docs/new.txt", "content": "hello"})
        .startswith("created docs/new.txt")
    )
    assert (work / "docs" / "new.txt").read_text() == "hello"
    assert [p.name for p in (work / "docs").iterdir()] == ["new.txt"]  # no temporary file left behind


def test_shell_runs_in_the_working_folder(work: Path) -> None:
    tools = tools_for(work)
    assert tools["run_shell"].run({"command": "ls", "cwd": "src"}) == "exit code 0\napp.py"
    assert tools["run_shell"].run({"command": "echo oops >&2; exit 3"}) == "exit code 3\noops"
    assert "$ rm -rf src" in tools["run_shell"].describe({"command": "rm -rf src"})
    assert (work / "src").exists()
    with pytest.raises(ToolError, match="outside the folders"):
        tools["run_shell"].run({"command": "pwd", "cwd": ".."})


def test_shell_timeout_kills_the_whole_process_group(work: Path, tmp_path: Path) -> None:
    marker = tmp_path / "survived"
    tools = tools_for(work, shell_timeout=1.0)
    started = time.monotonic()
    command = f"echo started; (sleep 3 && touch {marker}) & sleep 30"
    with pytest.raises(ToolError, match=r"timed out after 1 s and was killed; output so far:\nstarted"):
        tools["run_shell"].run({"command": command})
    assert time.monotonic() - started < 15
    time.sleep(3.5)
    assert not marker.exists()  # the background child died with the group


def test_shell_output_cap_keeps_memory_bounded(work: Path) -> None:
    script = "import sys\nfor _ in range(4000): sys.stdout.write('y' * 1000 + '\\n')"
    result = run_command(f'{sys.executable} -c "{script}"', str(work), timeout=60, output_limit=5000)
    assert result.exit_code == 0 and len(result.output) == 5000 and result.dropped == 4000 * 1001 - 5000
    text = tools_for(work, output_limit=300)["run_shell"].run({"command": "yes | head -c 100000"})
    assert "more bytes of output not shown" in text and len(text) < 400


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("2 + 3 * 4", 14),
        ("(2+3)*4", 20),
        ("2^10", 1024),
        ("sqrt(16) / 8", 0.5),
        ("-7 // 2", -4),
        ("max(1, 5, 3)", 5),
    ],
)
def test_calculator(expression: str, value: float) -> None:
    assert evaluate(expression) == value


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("__import__('os').system('true')", "not allowed"),
        ("().__class__", "not allowed"),
        ("open('x')", "not allowed"),
        ("'a' * 3", "not allowed"),
        ("9 ** 9 ** 9", "too large"),
        ("1 / 0", "division by zero"),
        ("factorial(100000)", "too large"),
        ("1 +", "not an arithmetic expression"),
        ("x" * 600, "longer than"),
    ],
)
def test_calculator_refuses(expression: str, problem: str) -> None:
    with pytest.raises(ToolError, match=problem):
        evaluate(expression)


def test_datetime_and_calculator_tools(work: Path) -> None:
    tools = tools_for(work)
    assert tools["calculator"].run({"expression": "6*7"}) == "42"
    assert tools["get_datetime"].run({"timezone": "UTC"}).endswith("UTC)")
    with pytest.raises(ToolError, match="unknown time zone"):
        tools["get_datetime"].run({"timezone": "Mars/Olympus"})
    assert [t.name for t in tools.values() if t.mutating] == ["write_file", "edit_file", "run_shell"]


def test_roots_default_to_the_working_folder(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(work)
    roots = Roots()
    assert roots.base == work.resolve() and roots.show(roots.resolve("src/app.py")) == os.path.join(
        "src", "app.py"
    )
    with pytest.raises(ToolError):
        roots.resolve("/")
