"""The built-in tools, with their schemas. File tools and run_shell are confined to the allowed roots."""

from __future__ import annotations

from dataclasses import dataclass

from g3chat.core.tools.calc import calculator, get_datetime
from g3chat.core.tools.confine import Roots
from g3chat.core.tools.files import FileTools
from g3chat.core.tools.model import Tool, object_schema
from g3chat.core.tools.shell import ShellTool

# Every word here is evaluated before each answer with tools (about 20 ms a token for Gemma 3n E2B on two
# cores; bench/preamble.py counts them): descriptions say only what the name, type and bounds do not.
_PATH = {"type": "string"}  # relative paths start at the working folder
_FOLDER = {"type": "string", "default": "."}


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
                    "start_line": {"type": "integer", "minimum": 1},
                    "max_lines": {"type": "integer", "minimum": 1},
                },
                ["path"],
            ),
            files.read_file,
            timeout=s.timeout,
        ),
        Tool(
            "list_dir",
            "List a folder; subfolders end with /.",
            object_schema({"path": _FOLDER}),
            files.list_dir,
            timeout=s.timeout,
        ),
        Tool(
            "search_files",
            "Find lines containing pattern (case-insensitive) in the text files under path.",
            object_schema(
                {
                    "pattern": {"type": "string"},
                    "path": _FOLDER,
                    "glob": {"type": "string", "description": "File name filter, e.g. *.py"},
                    "regex": {"type": "boolean", "description": "pattern is a regular expression"},
                },
                ["pattern"],
            ),
            files.search_files,
            timeout=s.timeout,
        ),
        Tool(
            "write_file",
            "Create or overwrite a text file.",
            object_schema({"path": _PATH, "content": {"type": "string"}}, ["path", "content"]),
            files.write_file,
            mutating=True,
            timeout=s.timeout,
            preview=files.preview_write,
        ),
        Tool(
            "edit_file",
            "Replace old_text, which must occur exactly once in the file, with new_text.",
            object_schema(
                {"path": _PATH, "old_text": {"type": "string"}, "new_text": {"type": "string"}},
                ["path", "old_text", "new_text"],
            ),
            files.edit_file,
            mutating=True,
            timeout=s.timeout,
            preview=files.preview_edit,
        ),
        Tool(
            "run_shell",
            "Run a shell command; returns its exit code and output.",
            object_schema({"command": {"type": "string"}, "cwd": _FOLDER}, ["command"]),
            shell.run,
            mutating=True,
            timeout=None,  # run_shell enforces its own timeout and kills the command
            preview=shell.preview,
        ),
        Tool(
            "get_datetime",
            "The current date and time, local or in an IANA time zone.",
            object_schema({"timezone": {"type": "string", "description": "e.g. Europe/Paris"}}),
            get_datetime,
            timeout=s.timeout,
        ),
        Tool(
            "calculator",
            "Evaluate arithmetic, e.g. (2+3)*sqrt(16)/7.",
            object_schema({"expression": {"type": "string"}}, ["expression"]),
            calculator,
            timeout=s.timeout,
        ),
    ]
