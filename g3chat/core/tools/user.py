"""User tools: Python functions in the user tools folder, or in packages through entry points.

A tool is a function marked with :func:`tool`; its JSON schema comes from the type hints and the
docstring (first paragraph: the description; ``Args:`` lines or ``:param name:`` fields: the parameters')::

    from g3chat.core.tools import tool

    @tool(mutating=False)
    def word_count(text: str, unique: bool = False) -> int:
        \"\"\"Count the words in a text.

        Args:
            text: The text to count.
            unique: Count each distinct word once.
        \"\"\"
        words = text.split()
        return len(set(words)) if unique else len(words)

User tools are mutating (they need approval) unless marked ``mutating=False``. Every ``*.py`` file in the
folder is loaded; a file that fails to import is reported and skipped, never fatal. Packages can offer
tools under the ``g3chat.tools`` entry-point group (an entry point names a decorated function or a module).
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from g3chat.core.tools.model import Tool, object_schema

MARK = "__g3chat_tool__"
ENTRY_POINT_GROUP = "g3chat.tools"
_SIMPLE = {str: "string", int: "integer", float: "number", bool: "boolean"}


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    mutating: bool = True,
    timeout: float | None = 30.0,
) -> Any:
    """Mark ``fn`` as a g3chat tool (usable bare, ``@tool``, or with options, ``@tool(mutating=False)``)."""

    def mark(func: Callable[..., Any]) -> Callable[..., Any]:
        setattr(
            func, MARK, {"name": name, "description": description, "mutating": mutating, "timeout": timeout}
        )
        return func

    return mark(fn) if fn is not None else mark


def _type_schema(hint: Any) -> dict[str, Any]:
    origin, args = get_origin(hint), get_args(hint)
    if hint in _SIMPLE:
        return {"type": _SIMPLE[hint]}
    if origin is Literal:
        return {"enum": list(args)}
    if origin in (Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return _type_schema(rest[0]) if len(rest) == 1 else {"anyOf": [_type_schema(a) for a in rest]}
    if origin in (list, tuple, set, frozenset) or hint in (list, tuple, set):
        return {"type": "array", "items": _type_schema(args[0])} if args else {"type": "array"}
    if origin is dict or hint is dict:
        return {"type": "object"}
    raise TypeError(f"unsupported parameter type {hint!r}")


def _docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    text = inspect.cleandoc(doc or "")
    summary = text.split("\n\n", 1)[0].replace("\n", " ").strip()
    params: dict[str, str] = {}
    for match in re.finditer(r":param\s+(\w+):\s*(.+)", text):
        params[match.group(1)] = match.group(2).strip()
    section = re.search(r"^(?:Args|Arguments|Parameters):\s*\n((?:[ \t]+.*\n?|\s*\n)+)", text, re.MULTILINE)
    if section:
        for match in re.finditer(r"^[ \t]+(\w+)(?:\s*\([^)]*\))?:\s*(.+)$", section.group(1), re.MULTILINE):
            params.setdefault(match.group(1), match.group(2).strip())
    return summary, params


def tool_from_function(func: Callable[..., Any], origin: str = "") -> Tool:
    options = getattr(func, MARK, None) or {}
    summary, docs = _docstring(func.__doc__)
    hints = typing.get_type_hints(func)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in inspect.signature(func).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"{func.__name__}: *args and **kwargs are not supported")
        if param.name not in hints:
            raise TypeError(f"{func.__name__}: parameter {param.name} needs a type hint")
        schema = _type_schema(hints[param.name])
        if param.name in docs:
            schema["description"] = docs[param.name]
        properties[param.name] = schema
        if param.default is inspect.Parameter.empty:
            required.append(param.name)

    def run(arguments: dict[str, Any]) -> Any:
        return func(**arguments)

    return Tool(
        options.get("name") or func.__name__,
        options.get("description") or summary or func.__name__,
        object_schema(properties, required),
        run,
        mutating=options.get("mutating", True),
        timeout=options.get("timeout", 30.0),
        source="user",
        origin=origin or getattr(func, "__module__", ""),
    )


def tools_in_module(module: types.ModuleType, origin: str) -> list[Tool]:
    found = [value for value in vars(module).values() if callable(value) and hasattr(value, MARK)]
    return [tool_from_function(func, origin) for func in found]


def load_tools_dir(folder: Path) -> tuple[list[Tool], list[str]]:
    """(tools, problems) from every ``*.py`` file in ``folder``; a bad file is a problem, not an error."""
    tools: list[Tool] = []
    problems: list[str] = []
    if not folder.is_dir():
        return tools, problems
    for path in sorted(folder.glob("*.py")):
        module_name = f"g3chat_user_tools.{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}"
        try:
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                raise ImportError("not a Python module")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
            tools.extend(tools_in_module(module, str(path)))
        except Exception as exc:
            sys.modules.pop(module_name, None)
            problems.append(f"user tools {path}: {type(exc).__name__}: {exc}")
    return tools, problems


def load_entry_point_tools() -> tuple[list[Tool], list[str]]:
    from importlib.metadata import entry_points

    tools: list[Tool] = []
    problems: list[str] = []
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            target = entry.load()
            if isinstance(target, types.ModuleType):
                tools.extend(tools_in_module(target, f"entry point {entry.name}"))
            elif isinstance(target, Tool):
                tools.append(target)
            else:
                tools.append(tool_from_function(target, f"entry point {entry.name}"))
        except Exception as exc:
            problems.append(f"tools entry point {entry.name}: {type(exc).__name__}: {exc}")
    return tools, problems
