"""Where tools come from: user tools from a folder, a real stdio MCP server, the merged registry."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from g3chat.core.errors import ConfigError, InputError
from g3chat.core.tools.mcp import McpClients, McpServerConfig, load_mcp_config
from g3chat.core.tools.model import Tool, ToolError, ToolRegistry, object_schema
from g3chat.core.tools.setup import load_tools
from g3chat.core.tools.user import load_tools_dir, tool, tool_from_function
from tests.conftest import run_cli

START = 180.0  # seconds an MCP server may take to start on a busy two-core machine

USER_TOOLS = '''
from typing import Literal
from g3chat.core.tools import tool

@tool(mutating=False)
def word_count(text: str, unique: bool = False, mode: Literal["words", "lines"] = "words") -> int:
    """Count the words in a text.

    Args:
        text: The text to count.
        unique: Count each distinct word once.
        mode: What to count.
    """
    items = text.split() if mode == "words" else text.splitlines()
    return len(set(items)) if unique else len(items)

@tool
def stamp(path: str, tags: list[str] | None = None) -> dict:
    """Pretend to stamp a file.

    :param path: The file.
    :param tags: Labels to add.
    """
    return {"path": path, "tags": tags or []}

def helper(x):  # not a tool: not decorated
    return x
'''

MCP_SERVER = '''
import os
from mcp.server.mcpserver import MCPServer  # FastMCP, as mcp 2 calls it
from mcp.types import ToolAnnotations

app = MCPServer("g3chat-test")

@app.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b

@app.tool(annotations=ToolAnnotations(read_only_hint=True))
def shout(text: str) -> str:
    """Upper-case a text."""
    return text.upper()

@app.tool()
def fail(reason: str) -> str:
    """Always fails."""
    raise ValueError(reason)

@app.tool()
def read_file(path: str) -> str:
    """Clashes with the built-in."""
    return "from mcp"

@app.tool()
def die() -> str:
    """Exit the server process."""
    os._exit(3)

if __name__ == "__main__":
    app.run()
'''


def test_user_tools_from_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "tools"
    folder.mkdir()
    (folder / "mine.py").write_text(USER_TOOLS)
    (folder / "broken.py").write_text("import not_a_module_anywhere\n")
    (folder / "notes.txt").write_text("not python")
    tools, problems = load_tools_dir(folder)
    assert len(problems) == 1 and "broken.py" in problems[0] and "ModuleNotFoundError" in problems[0]
    by_name = {t.name: t for t in tools}
    assert sorted(by_name) == ["stamp", "word_count"]
    count = by_name["word_count"]
    assert count.description == "Count the words in a text." and not count.mutating and count.source == "user"
    assert count.parameters == {
        "type": "object",
        "properties": {
            "text": {"type": "string", "description": "The text to count."},
            "unique": {"type": "boolean", "description": "Count each distinct word once."},
            "mode": {"enum": ["words", "lines"], "description": "What to count."},
        },
        "required": ["text"],
    }
    assert count.run({"text": "a b a", "unique": True}) == 2
    stamp = by_name["stamp"]
    assert stamp.mutating  # user tools need approval unless marked otherwise
    assert stamp.parameters["properties"]["tags"] == {
        "type": "array",
        "items": {"type": "string"},
        "description": "Labels to add.",
    }
    assert stamp.parameters["required"] == ["path"] and stamp.origin == str(folder / "mine.py")


def test_decorator_refuses_what_it_cannot_describe() -> None:
    @tool
    def untyped(x):
        return x

    @tool
    def splat(*args: int) -> int:
        return 0

    for func in (untyped, splat):
        with pytest.raises(TypeError):
            tool_from_function(func)


def test_registry_reports_clashes_and_unknown_names() -> None:
    registry = ToolRegistry()
    schema = object_schema()
    registry.add(Tool("read_file", "builtin", schema, lambda a: ""))
    assert not registry.add(Tool("read_file", "user", schema, lambda a: "", source="user", origin="mine.py"))
    assert registry.clashes == [
        "user tool 'read_file' (mine.py) clashes with the builtin tool of that name; skipped"
    ]
    assert [t.description for t in registry] == ["builtin"]
    with pytest.raises(InputError, match="unknown tool"):
        registry.select("read_file,nope")
    with pytest.raises(ValueError):
        Tool("bad name!", "", schema, lambda a: "")


def test_mcp_config_format(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    assert load_mcp_config(path) == ([], [])
    path.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "files": {"command": "npx", "args": ["-y", "server"], "env": {"A": "1"}},
                    "remote": {"url": "http://localhost:1/mcp"},
                    "off": {"command": "x", "disabled": True},
                    "both": {"command": "x", "url": "http://y"},
                }
            }
        )
    )
    servers, problems = load_mcp_config(path)
    assert [s.name for s in servers] == ["files", "remote"] and servers[0].env == {"A": "1"}
    assert len(problems) == 1 and "both" in problems[0]
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"mcp.json:1:2: invalid JSON"):
        load_mcp_config(path)


@pytest.mark.slow
def test_real_stdio_mcp_server(tmp_path: Path) -> None:
    script = tmp_path / "server.py"
    script.write_text(MCP_SERVER)
    (tmp_path / "mcp.json").write_text(
        json.dumps(
            {
                "mcpServers": {
                    "test": {"command": sys.executable, "args": [str(script)]},
                    "missing": {"command": str(tmp_path / "no-such-server")},
                }
            }
        )
    )
    toolset = load_tools(
        tools_dir=None,
        mcp_file=tmp_path / "mcp.json",
        roots=[tmp_path],
        entry_points=False,
        mcp_start_timeout=START,
    )
    with toolset:
        registry = toolset.registry
        mcp_tools = {t.name: t for t in registry if t.source == "mcp"}
        assert sorted(mcp_tools) == ["add", "die", "fail", "shout"]
        notices = registry.notices()
        assert any("MCP server missing did not start" in n for n in notices)
        assert any("mcp tool 'read_file' (MCP server test) clashes with the builtin" in n for n in notices)
        assert registry.get("read_file").source == "builtin"
        add = mcp_tools["add"]
        assert add.mutating and not mcp_tools["shout"].mutating  # read_only_hint honoured
        assert add.parameters["required"] == ["a", "b"] and add.origin == "MCP server test"
        assert add.run({"a": 2, "b": 40}) == "42"
        assert mcp_tools["shout"].run({"text": "quiet"}) == "QUIET"
        with pytest.raises(ToolError, match="fail"):  # the server reports is_error with its own text
            mcp_tools["fail"].run({"reason": "boom"})
        with pytest.raises(ToolError, match="MCP server test"):
            mcp_tools["die"].run({})
        with pytest.raises(ToolError, match="not running"):
            add.run({"a": 1, "b": 1})  # the dead server is reported, not fatal


def test_failing_server_alone_is_not_fatal(tmp_path: Path) -> None:
    clients = McpClients([McpServerConfig("nope", str(tmp_path / "absent"))], start_timeout=START)
    assert clients.start() == []
    assert clients.problems[0].startswith("MCP server nope did not start: FileNotFoundError")
    clients.close()


def test_tools_list_cli_shows_user_tools_and_problems(g3chat_home: Path) -> None:
    folder = g3chat_home / "config" / "tools"
    folder.mkdir(parents=True)
    (folder / "mine.py").write_text(USER_TOOLS)
    (folder / "bad.py").write_text("raise RuntimeError('nope')\n")
    proc = run_cli("tools", "list", "--json", "--no-mcp")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    names = [r["name"] for r in rows]
    assert names[:8] == [
        "read_file",
        "list_dir",
        "search_files",
        "write_file",
        "edit_file",
        "run_shell",
        "get_datetime",
        "calculator",
    ]
    assert {"word_count", "stamp"} <= set(names)
    assert "bad.py: RuntimeError: nope" in proc.stderr
    table = run_cli("tools", "list", "--no-mcp")
    assert table.returncode == 0 and table.stdout.startswith("NAME")
    assert any(line.split()[:3] == ["run_shell", "builtin", "yes"] for line in table.stdout.splitlines())


HTTP_SERVER = """
import sys
from mcp.server.mcpserver import MCPServer

app = MCPServer("g3chat-http-test")

@app.tool()
def add(a: int, b: int) -> int:
    \"\"\"Add two integers.\"\"\"
    return a + b

app.run(transport="streamable-http", host="127.0.0.1", port=int(sys.argv[1]))
"""


@pytest.mark.slow
def test_streamable_http_mcp_server(tmp_path: Path) -> None:
    import socket
    import subprocess
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = tmp_path / "http_server.py"
    script.write_text(HTTP_SERVER)
    server = subprocess.Popen(
        [sys.executable, str(script), str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + START
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert server.poll() is None, "the HTTP server exited"
            time.sleep(0.5)
        clients = McpClients(
            [McpServerConfig("web", url=f"http://127.0.0.1:{port}/mcp")], start_timeout=START
        )
        try:
            tools = clients.start()
            assert clients.problems == [] and [t.name for t in tools] == ["add"]
            assert tools[0].run({"a": 20, "b": 22}) == "42"
        finally:
            clients.close()
    finally:
        server.kill()
        server.wait()


def test_entry_point_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    from g3chat.core.tools.user import ENTRY_POINT_GROUP, load_entry_point_tools

    points = [
        importlib.metadata.EntryPoint("demo", "tests.fixtures.tool_plugin", ENTRY_POINT_GROUP),
        importlib.metadata.EntryPoint("one", "tests.fixtures.tool_plugin:reverse", ENTRY_POINT_GROUP),
        importlib.metadata.EntryPoint("gone", "tests.fixtures.no_such_module", ENTRY_POINT_GROUP),
    ]
    monkeypatch.setattr(
        importlib.metadata, "entry_points", lambda group: [p for p in points if p.group == group]
    )
    tools, problems = load_entry_point_tools()
    assert [(t.name, t.origin, t.mutating) for t in tools] == [
        ("reverse", "entry point demo", False),
        ("reverse", "entry point one", False),
    ]
    assert tools[0].run({"text": "abc"}) == "cba"
    assert len(problems) == 1 and problems[0].startswith("tools entry point gone: ModuleNotFoundError")
