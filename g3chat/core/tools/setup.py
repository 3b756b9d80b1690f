"""Assembling the tool registry: built-ins, then user tools (folder and entry points), then MCP servers."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from g3chat.core.tools.builtins import BuiltinSettings, builtin_tools
from g3chat.core.tools.confine import Roots
from g3chat.core.tools.mcp import McpClients, load_mcp_config
from g3chat.core.tools.model import ToolRegistry
from g3chat.core.tools.user import load_entry_point_tools, load_tools_dir


@dataclass
class ToolSet:
    """A registry plus what must be shut down with it (MCP server sessions)."""

    registry: ToolRegistry
    roots: Roots
    mcp: McpClients | None = None
    closed: bool = field(default=False, repr=False)

    def close(self) -> None:
        if self.mcp is not None and not self.closed:
            self.mcp.close()
        self.closed = True

    def __enter__(self) -> ToolSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_roots(text: str) -> list[Path]:
    return [Path(p).expanduser() for p in text.split(os.pathsep) if p.strip()]


def load_tools(
    *,
    tools_dir: Path | None,
    mcp_file: Path | None,
    roots: Iterable[Path | str] | None = None,
    settings: BuiltinSettings | None = None,
    entry_points: bool = True,
    mcp_errlog: Path | None = None,
    mcp_start_timeout: float = 30.0,
) -> ToolSet:
    """Every tool g3chat knows; ``mcp_file=None`` skips MCP servers. Problems go to ``registry.problems``."""
    allowed = Roots(roots)
    registry = ToolRegistry()
    registry.extend(builtin_tools(allowed, settings))
    if tools_dir is not None:
        found, problems = load_tools_dir(tools_dir)
        registry.problems.extend(problems)
        registry.extend(found)
    if entry_points:
        found, problems = load_entry_point_tools()
        registry.problems.extend(problems)
        registry.extend(found)
    clients = None
    if mcp_file is not None:
        servers, problems = load_mcp_config(mcp_file)
        registry.problems.extend(problems)
        if servers:
            clients = McpClients(servers, start_timeout=mcp_start_timeout, errlog=mcp_errlog)
            found_mcp = clients.start()
            registry.problems.extend(clients.problems)
            registry.extend(found_mcp)
    return ToolSet(registry, allowed, clients)
