"""The built-in tools, with their schemas. File tools and run_shell are confined to the allowed roots."""

from __future__ import annotations

from dataclasses import dataclass

from g3chat.core.tools.calc import calculator, get_datetime
from g3chat.core.tools.confine import Roots
from g3chat.core.tools.files import FileTools
from g3chat.core.tools.model import Tool, object_schema
from g3chat.core.tools.shell import ShellTool

_PATH = {"type": "string", "description": "Path relative to the working folder."}


@dataclass(frozen=True)
class BuiltinSettings:
    output_limit: int = 16_000  # characters of tool output the model sees
    shell_timeout: float = 30.0  # seconds before run_shell kills the command
    timeout: float = 30.0  # seconds any other tool may take


def builtin_tools(roots: Roots, settings: BuiltinSettings | None = None) -> list[Tool]:
    s = settings or BuiltinSettings()
    files = FileTools(roots, s.output_limit)
    shell = ShellTool(roots, s.shell_timeout, s.output_limit)
    return [
        Tool(
            "read_file",
            "Read a text file.",
            object_schema(
                {
                    "path": _PATH,
                    "start_line": {"type": "integer", "minimum": 1, "description": "First line (1-based)."},
                    "max_lines": {"type": "integer", "minimum": 1, "description": "Most lines to read."},
                },
                ["path"],
            ),
            files.read_file,
            timeout=s.timeout,
        ),
        Tool(
            "list_dir",
            "List the files and folders in a folder (folders end with /).",
            object_schema({"path": {**_PATH, "description": "Folder; defaults to the working folder."}}),
            files.list_dir,
            timeout=s.timeout,
        ),
        Tool(
            "search_files",
            "Search text files under a folder for lines containing a pattern (case-insensitive).",
            object_schema(
                {
                    "pattern": {"type": "string", "description": "Text to look for."},
                    "path": {
                        **_PATH,
                        "description": "Folder or file to search; defaults to the working folder.",
                    },
                    "glob": {"type": "string", "description": "Only files whose name matches, e.g. *.py."},
                    "regex": {"type": "boolean", "description": "Treat the pattern as a regular expression."},
                },
                ["pattern"],
            ),
            files.search_files,
            timeout=s.timeout,
        ),
        Tool(
            "write_file",
            "Create or overwrite a text file with the given content.",
            object_schema({"path": _PATH, "content": {"type": "string"}}, ["path", "content"]),
            files.write_file,
            mutating=True,
            timeout=s.timeout,
            preview=files.preview_write,
        ),
        Tool(
            "edit_file",
            "Replace one exact, unique piece of text in a file with new text.",
            object_schema(
                {
                    "path": _PATH,
                    "old_text": {
                        "type": "string",
                        "description": "Text to replace; must occur exactly once.",
                    },
                    "new_text": {"type": "string", "description": "Replacement text."},
                },
                ["path", "old_text", "new_text"],
            ),
            files.edit_file,
            mutating=True,
            timeout=s.timeout,
            preview=files.preview_edit,
        ),
        Tool(
            "run_shell",
            "Run a shell command and return its exit code and output.",
            object_schema(
                {
                    "command": {"type": "string", "description": "The command line."},
                    "cwd": {**_PATH, "description": "Working folder; defaults to the working folder."},
                },
                ["command"],
            ),
            shell.run,
            mutating=True,
            timeout=None,  # run_shell enforces its own timeout and kills the command
            preview=shell.preview,
        ),
        Tool(
            "get_datetime",
            "The current local date and time (or in a given IANA time zone).",
            object_schema({"timezone": {"type": "string", "description": "e.g. Europe/Paris; optional."}}),
            get_datetime,
            timeout=s.timeout,
        ),
        Tool(
            "calculator",
            "Evaluate an arithmetic expression, e.g. (2 + 3) * sqrt(16) / 7.",
            object_schema({"expression": {"type": "string"}}, ["expression"]),
            calculator,
            timeout=s.timeout,
        ),
    ]
