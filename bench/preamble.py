"""Prompt tokens the tools' description costs: per built-in tool, the instructions, and in all.

Gemma 3n has no tool tokens, so g3chat describes the tools in the system prompt, and every one of those
tokens is evaluated before the first answer token (about 43 ms each for an E2B-shaped Q4_K_M on a two-core
machine). This counts them with Gemma's tokenizer (the offline test model, Gemma 3 270M, has Gemma's
262,144-token vocabulary; only its vocabulary is loaded) for two renderings of the same built-in tools:

- before: the format of the first release of tool calls (one ``json.dumps`` line per tool, full schema),
  kept below as ``_old_tools_prompt`` so the baseline is recomputed in every run;
- after: what :func:`g3chat.core.tools.protocol.tools_prompt` writes now.

A tool's tokens are those of its line; "instructions" is the rest of the section (how to call, the layout
and the ``tool_choice`` rule), so the rows add up to the total.

    python bench/preamble.py [--model PATH] [--choice auto] [--ms-per-token 43]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from _models import MODEL_HELP, resolve_model

from g3chat.core.tools.builtins import builtin_tools
from g3chat.core.tools.confine import Roots
from g3chat.core.tools.protocol import tool_line, tool_spec, tools_prompt

# ------------------------------------------------------------------------------- the old format

_OLD_DESCRIPTIONS = {  # the built-in tools' texts before they were shortened: (tool, {parameter: text})
    "read_file": (
        "Read a text file.",
        {
            "path": "Path relative to the working folder.",
            "start_line": "First line (1-based).",
            "max_lines": "Most lines to read.",
        },
    ),
    "list_dir": (
        "List the files and folders in a folder (folders end with /).",
        {"path": "Folder; defaults to the working folder."},
    ),
    "search_files": (
        "Search text files under a folder for lines containing a pattern (case-insensitive).",
        {
            "pattern": "Text to look for.",
            "path": "Folder or file to search; defaults to the working folder.",
            "glob": "Only files whose name matches, e.g. *.py.",
            "regex": "Treat the pattern as a regular expression.",
        },
    ),
    "write_file": (
        "Create or overwrite a text file with the given content.",
        {"path": "Path relative to the working folder."},
    ),
    "edit_file": (
        "Replace one exact, unique piece of text in a file with new text.",
        {
            "path": "Path relative to the working folder.",
            "old_text": "Text to replace; must occur exactly once.",
            "new_text": "Replacement text.",
        },
    ),
    "run_shell": (
        "Run a shell command and return its exit code and output.",
        {"command": "The command line.", "cwd": "Working folder; defaults to the working folder."},
    ),
    "get_datetime": (
        "The current local date and time (or in a given IANA time zone).",
        {"timezone": "e.g. Europe/Paris; optional."},
    ),
    "calculator": ("Evaluate an arithmetic expression, e.g. (2 + 3) * sqrt(16) / 7.", {}),
}


def _old_spec(name: str, description: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The old spec of a built-in tool: its old texts on today's schema (types, bounds, required)."""
    texts = _OLD_DESCRIPTIONS.get(name)
    if texts is None:
        return {"name": name, "description": description, "parameters": dict(parameters)}
    properties: dict[str, Any] = {}
    for key, schema in parameters.get("properties", {}).items():
        old = {k: v for k, v in schema.items() if k not in ("description", "default")}
        if key in texts[1]:
            old["description"] = texts[1][key]
        properties[key] = old
    old_parameters = {"type": "object", "properties": properties}
    if parameters.get("required"):
        old_parameters["required"] = list(parameters["required"])
    return {"name": name, "description": texts[0], "parameters": old_parameters}


def _old_line(spec: Mapping[str, Any]) -> str:
    return json.dumps(spec, ensure_ascii=False)


def _old_tools_prompt(specs: Sequence[Mapping[str, Any]], choice: str = "auto") -> str:
    """protocol.tools_prompt as it was before the section was shortened (kept here as the baseline)."""
    listing = "\n".join(_old_line(spec) for spec in specs)
    if choice == "required":
        rule = "You must call one of these tools now."
    elif choice not in ("auto", "none"):
        rule = f"You must call the tool {choice} now."
    else:
        rule = "Call a tool only when you need it; otherwise answer in plain text."
    return (
        "You have access to tools. To call a tool, answer with only a tool_code block that holds a JSON "
        'object with the tool\'s "name" and its "parameters", like this:\n'
        '```tool_code\n{"name": "tool_name", "parameters": {"argument": "value"}}\n```\n'
        "The result comes back in a tool_outputs block. When you have what you need, answer the user in "
        f"plain text.\n\nTools:\n{listing}\n\n{rule}"
    )


# ------------------------------------------------------------------------------------- counting


def _tokenizer(model: Path) -> Any:
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(model), vocab_only=True, verbose=False)
    return lambda text: len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))


def measure(count: Any, choice: str) -> dict[str, dict[str, int]]:
    """{"before"|"after": {tool name | "instructions" | "total": tokens}} for the built-in tools."""
    tools = builtin_tools(Roots([Path.cwd()]))
    old_specs = [_old_spec(t.name, t.description, t.parameters) for t in tools]
    new_specs = [tool_spec(t.name, t.description, t.parameters) for t in tools]
    rows: dict[str, dict[str, int]] = {}
    for label, specs, line, prompt in (
        ("before", old_specs, _old_line, _old_tools_prompt),
        ("after", new_specs, tool_line, tools_prompt),
    ):
        per_tool = {spec["name"]: count(line(spec)) for spec in specs}
        total = count(prompt(specs, choice))
        rows[label] = {**per_tool, "instructions": total - sum(per_tool.values()), "total": total}
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help=MODEL_HELP + " (only its vocabulary is read)")
    parser.add_argument("--choice", default="auto", help="tool_choice whose rule ends the section")
    parser.add_argument(
        "--ms-per-token", type=float, default=43.0, help="prompt evaluation cost for the time estimate"
    )
    args = parser.parse_args()
    args.model = resolve_model(args.model)
    rows = measure(_tokenizer(args.model), args.choice)
    before, after = rows["before"], rows["after"]
    print(
        f"Tools section tokens, built-in tools, tool_choice={args.choice}, vocabulary of {args.model.name}:"
    )
    print(f"  {'':14s} {'before':>7s} {'after':>7s} {'saved':>7s}")
    for key in before:
        saved = before[key] - after[key]
        share = f"{100 * saved / before[key]:5.1f} %" if before[key] else ""
        if key == "total":
            print(f"  {'-' * 14} {'-' * 7} {'-' * 7} {'-' * 7}")
        print(f"  {key:14s} {before[key]:7d} {after[key]:7d} {saved:7d}  {share}")
    ms = args.ms_per_token
    print(
        f"\nAt {ms:g} ms per prompt token: {before['total'] * ms / 1000:.1f} s before, "
        f"{after['total'] * ms / 1000:.1f} s after (an estimate, not a measurement)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
