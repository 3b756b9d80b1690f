"""What a tool is, and the registry that merges built-in, user and MCP tools.

A :class:`Tool` is data plus a callable: the model sees its name, description and JSON-schema
parameters; the loop checks the ``mutating`` flag (mutating tools need approval), applies the timeout,
and calls ``run(arguments)``, which returns text for the model or raises :class:`ToolError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Source = Literal["builtin", "user", "mcp"]
SOURCES: tuple[Source, ...] = ("builtin", "user", "mcp")
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


class ToolError(Exception):
    """A tool failed in a way the model should hear about (bad path, missing file, non-zero exit...)."""


@dataclass(frozen=True)
class Tool:
    """One callable tool.

    ``preview`` (mutating tools) returns the exact command or diff to show before approval; it must not
    change anything. ``origin`` says where the tool came from (a file, an MCP server) for listings.
    """

    name: str
    description: str
    parameters: Mapping[str, Any]
    run: Callable[[dict[str, Any]], Any]  # the runner turns what it returns into text
    mutating: bool = False
    timeout: float | None = 30.0
    preview: Callable[[dict[str, Any]], str] | None = None
    source: Source = "builtin"
    origin: str = ""

    def __post_init__(self) -> None:
        if not NAME_RE.match(self.name):
            raise ValueError(f"invalid tool name {self.name!r}")
        if self.parameters.get("type", "object") != "object":
            raise ValueError(f"tool {self.name}: parameters must be a JSON schema of type object")

    def describe(self, arguments: dict[str, Any]) -> str:
        """What approving this call would do, for people: the tool's preview or the call itself."""
        if self.preview is not None:
            return self.preview(arguments)
        import json

        return f"{self.name}({json.dumps(arguments, ensure_ascii=False)})"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "parameters": dict(self.parameters),
            "mutating": self.mutating,
            "source": self.source,
            "origin": self.origin,
        }


def object_schema(
    properties: Mapping[str, Any] | None = None, required: Iterable[str] = ()
) -> dict[str, Any]:
    """A JSON schema of type object (no extra properties) from ``properties``."""
    schema: dict[str, Any] = {"type": "object", "properties": dict(properties or {})}
    required = list(required)
    if required:
        schema["required"] = required
    return schema


@dataclass
class ToolRegistry:
    """Tools by name. The first tool to claim a name keeps it; later ones are reported as clashes.

    Add built-ins first, then user tools, then MCP tools: a user tool cannot shadow a built-in, and an MCP
    server cannot shadow either.
    """

    _tools: dict[str, Tool] = field(default_factory=dict)
    clashes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, tool: Tool) -> bool:
        existing = self._tools.get(tool.name)
        if existing is not None:
            self.clashes.append(
                f"{tool.source} tool {tool.name!r}{_from(tool)} clashes with the {existing.source} tool of "
                f"that name{_from(existing)}; skipped"
            )
            return False
        self._tools[tool.name] = tool
        return True

    def extend(self, tools: Iterable[Tool]) -> None:
        for tool in tools:
            self.add(tool)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        return list(self._tools)

    def select(self, spec: str | Iterable[str]) -> list[Tool]:
        """Tools named by ``spec``: ``"all"``, ``"NAME,NAME"`` or a list of names; unknown names raise."""
        from g3chat.core.errors import InputError

        if isinstance(spec, str):
            if spec.strip() == "all":
                return list(self)
            spec = [s for s in (p.strip() for p in spec.split(",")) if s]
        names = list(dict.fromkeys(spec))
        unknown = [n for n in names if n not in self._tools]
        if unknown:
            known = ", ".join(sorted(self._tools)) or "none"
            raise InputError(f"unknown tool(s): {', '.join(unknown)} (known: {known})")
        return [self._tools[n] for n in names]

    def notices(self) -> list[str]:
        """Everything worth telling the user about how the registry was assembled."""
        return [*self.problems, *self.clashes]


def _from(tool: Tool) -> str:
    return f" ({tool.origin})" if tool.origin else ""
