"""Tool calls: the tool model and registry, Gemma's tool protocol and grammar, built-in tools, user tools,
MCP servers, approval and the loop. Nothing heavy is imported here (``mcp`` and ``jsonschema`` load when
used), so ``from g3chat.core.tools import tool`` is cheap in a user tools file."""

from __future__ import annotations

from g3chat.core.tools.model import Tool, ToolError, ToolRegistry
from g3chat.core.tools.user import tool

__all__ = ["Tool", "ToolError", "ToolRegistry", "tool"]
