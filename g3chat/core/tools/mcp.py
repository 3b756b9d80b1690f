"""MCP servers as tool sources, through the official ``mcp`` SDK (stdio and streamable HTTP).

Servers are configured in ``mcp.json`` in the format Claude Desktop uses::

    {"mcpServers": {
        "files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]},
        "remote": {"url": "http://localhost:8000/mcp"}}}

The SDK is asynchronous; g3chat's loop is not. :class:`McpClients` runs one asyncio loop in a background
thread, keeps each server's session open in a task there, and turns each listed tool into a :class:`Tool`
whose ``run`` waits for the call's result. A server that fails to start, or dies later, is reported and
skipped: its calls return an error for the model, the rest of g3chat carries on. MCP tools are mutating
(they need approval) unless the server marks them read-only.
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import contextlib
import json
import os
import threading
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from g3chat.core.errors import ConfigError
from g3chat.core.tools.model import NAME_RE, Tool, ToolError


@dataclass(frozen=True)
class McpServerConfig:
    name: str
    command: str = ""
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str = ""
    timeout: float = 60.0


def load_mcp_config(path: Path) -> tuple[list[McpServerConfig], list[str]]:
    """Servers from ``path`` (absent: none). Malformed JSON is a ConfigError; a bad entry a problem."""
    if not path.exists():
        return [], []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise ConfigError(f'{path}: expected {{"mcpServers": {{"name": {{...}}}}}}')
    out: list[McpServerConfig] = []
    problems: list[str] = []
    for name, entry in servers.items():
        if not isinstance(entry, dict) or entry.get("disabled") is True:
            if not isinstance(entry, dict):
                problems.append(f"MCP server {name}: the entry must be an object; skipped")
            continue
        command, url = entry.get("command", ""), entry.get("url", "")
        args, env = entry.get("args", []), entry.get("env", {})
        if not (isinstance(command, str) and isinstance(url, str)) or bool(command) == bool(url):
            problems.append(f"MCP server {name}: needs a command (stdio) or a url (HTTP), not both; skipped")
            continue
        if (
            not isinstance(args, list)
            or not all(isinstance(a, str) for a in args)
            or not isinstance(env, dict)
        ):
            problems.append(f"MCP server {name}: args must be a list of strings and env an object; skipped")
            continue
        timeout = entry.get("timeout", 60)
        out.append(
            McpServerConfig(
                name,
                command,
                tuple(args),
                {str(k): str(v) for k, v in env.items()},
                entry.get("cwd") if isinstance(entry.get("cwd"), str) else None,
                url,
                float(timeout) if isinstance(timeout, (int, float)) and timeout > 0 else 60.0,
            )
        )
    return out, problems


def _field(obj: Any, *names: str, default: Any = None) -> Any:
    """An attribute under the first of ``names`` it has (the SDK renamed fields from camelCase)."""
    for name in names:
        if hasattr(obj, name):
            return getattr(obj, name)
    return default


def _result_text(result: Any) -> str:
    pieces: list[str] = []
    for block in _field(result, "content", default=[]) or []:
        kind = _field(block, "type", default="")
        if kind == "text":
            pieces.append(block.text)
        elif kind == "resource":
            resource = block.resource
            pieces.append(_field(resource, "text", default=None) or f"[resource {resource.uri}]")
        else:
            pieces.append(f"[{kind} content: {_field(block, 'mime_type', 'mimeType', default='')}]".strip())
    structured = _field(result, "structured_content", "structuredContent")
    if not pieces and structured is not None:
        pieces.append(json.dumps(structured, ensure_ascii=False))
    return "\n".join(pieces)


class McpClients:
    """Sessions with MCP servers, held open in a background thread until :meth:`close`."""

    def __init__(
        self, servers: list[McpServerConfig], *, start_timeout: float = 30.0, errlog: Path | None = None
    ):
        self.servers = servers
        self.start_timeout = start_timeout
        self.problems: list[str] = []
        self._errlog = errlog
        self._sessions: dict[str, Any] = {}
        self._dead: dict[str, str] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None

    # ------------------------------------------------------------------------------------ start

    def start(self) -> list[Tool]:
        if not self.servers:
            return []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="g3chat-mcp", daemon=True)
        self._thread.start()
        tools: list[Tool] = []
        for server in self.servers:
            future = asyncio.run_coroutine_threadsafe(self._connect(server), self._loop)
            try:
                listed = future.result(timeout=self.start_timeout + 5)
            except Exception as exc:
                future.cancel()
                self.problems.append(f"MCP server {server.name} did not start: {_reason(exc)}; skipped")
                continue
            for item in listed:
                tool = self._tool(server, item)
                if tool is not None:
                    tools.append(tool)
        return tools

    async def _connect(self, server: McpServerConfig) -> list[Any]:
        if self._stop is None:
            self._stop = asyncio.Event()
        ready: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self._serve(server, ready))
        self._tasks.append(task)
        try:
            return await asyncio.wait_for(asyncio.shield(ready), self.start_timeout)
        except BaseException:
            task.cancel()
            raise

    async def _serve(self, server: McpServerConfig, ready: asyncio.Future[list[Any]]) -> None:
        from mcp import ClientSession

        try:
            async with AsyncExitStack() as stack:
                if server.url:
                    streams = await stack.enter_async_context(_http_client(server.url))
                else:
                    from mcp.client.stdio import StdioServerParameters, stdio_client

                    params = StdioServerParameters(
                        command=server.command, args=list(server.args), env=server.env or None, cwd=server.cwd
                    )
                    # The servers' stderr goes to a log file (or nowhere), never onto the terminal.
                    errlog = stack.enter_context(open(self._errlog or os.devnull, "a", encoding="utf-8"))  # noqa: SIM115
                    streams = await stack.enter_async_context(stdio_client(params, errlog=errlog))
                session = await stack.enter_async_context(
                    ClientSession(streams[0], streams[1], read_timeout_seconds=self.start_timeout)
                )
                await session.initialize()
                listed = await session.list_tools()
                self._sessions[server.name] = session
                if not ready.done():
                    ready.set_result(list(listed.tools))
                assert self._stop is not None
                await self._stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
            else:
                self._dead[server.name] = _reason(exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            self._sessions.pop(server.name, None)
            self._dead.setdefault(server.name, "it stopped")

    def _tool(self, server: McpServerConfig, item: Any) -> Tool | None:
        name = item.name
        if not NAME_RE.match(name):
            self.problems.append(f"MCP server {server.name}: tool name {name!r} is not usable; skipped")
            return None
        schema = _field(item, "input_schema", "inputSchema", default=None) or {"type": "object"}
        annotations = _field(item, "annotations")
        read_only = (
            bool(_field(annotations, "read_only_hint", "readOnlyHint", default=False))
            if annotations
            else False
        )

        def run(arguments: dict[str, Any]) -> str:
            return self.call(server, name, arguments)

        try:
            return Tool(
                name,
                (item.description or name).strip(),
                dict(schema),
                run,
                mutating=not read_only,
                timeout=None,  # the call enforces the server's own timeout
                source="mcp",
                origin=f"MCP server {server.name}",
            )
        except ValueError as exc:
            self.problems.append(f"MCP server {server.name}: {exc}; skipped")
            return None

    # ------------------------------------------------------------------------------------- call

    def call(self, server: McpServerConfig, name: str, arguments: dict[str, Any]) -> str:
        session = self._sessions.get(server.name)
        if session is None or self._loop is None:
            raise ToolError(
                f"MCP server {server.name} is not running ({self._dead.get(server.name, 'not started')})"
            )
        coroutine = session.call_tool(name, arguments, read_timeout_seconds=server.timeout)
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            result = future.result(timeout=server.timeout + 5)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise ToolError(f"MCP server {server.name} did not answer within {server.timeout:g} s") from None
        except Exception as exc:
            reason = _reason(exc)
            if "closed" in reason.lower():  # the server died: later calls say so without trying
                self._sessions.pop(server.name, None)
                self._dead[server.name] = "its connection closed"
            raise ToolError(f"MCP server {server.name}: {reason}") from None
        text = _result_text(result)
        if _field(result, "is_error", "isError", default=False):
            raise ToolError(text or "the MCP tool reported an error")
        return text

    def close(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def shutdown() -> None:
            if self._stop is not None:
                self._stop.set()
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=10)

        with contextlib.suppress(Exception):  # a server that will not stop is left to the process's end
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=15)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        self._loop = self._thread = None


def _http_client(url: str) -> Any:
    from mcp.client.streamable_http import streamable_http_client

    return streamable_http_client(url)


def _reason(exc: BaseException) -> str:
    group = getattr(builtins, "BaseExceptionGroup", None)  # Python 3.11+; anyio raises groups
    while group is not None and isinstance(exc, group) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
