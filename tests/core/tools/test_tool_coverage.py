"""What a call grammar enforces of a tool's schema; the rest is reported (``tools list``, ``--verbose``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from g3chat.core.tools.coverage import Coverage, coverage
from g3chat.core.tools.grammar import call_grammar, validate_arguments
from tests.conftest import run_cli
from tests.core.tools.test_tool_grammar import param_regex

# What pydantic (and so FastMCP) writes for: place: Place, days: Annotated[int, Field(ge=1, le=1000)],
# units: Literal[...] = "metric", hours: list[Annotated[int, Field(ge=0, le=23)]] | None = None.
FORECAST: dict[str, Any] = {
    "$defs": {
        "Place": {
            "properties": {
                "city": {"maxLength": 20, "title": "City", "type": "string"},
                "country": {
                    "default": "FR",
                    "enum": ["FR", "DE", "US"],
                    "title": "Country",
                    "type": "string",
                },
            },
            "required": ["city"],
            "title": "Place",
            "type": "object",
        }
    },
    "properties": {
        "place": {"$ref": "#/$defs/Place"},
        "days": {"maximum": 1000, "minimum": 1, "title": "Days", "type": "integer"},
        "units": {"default": "metric", "enum": ["metric", "imperial"], "title": "Units", "type": "string"},
        "hours": {
            "anyOf": [
                {"items": {"maximum": 23, "minimum": 0, "type": "integer"}, "type": "array"},
                {"type": "null"},
            ],
            "default": None,
            "title": "Hours",
        },
    },
    "required": ["place", "days"],
    "title": "forecastArguments",
    "type": "object",
}
ODD: dict[str, Any] = {
    "type": "object",
    "properties": {
        "x": {"not": {"type": "string"}},
        "code": {"type": "string", "pattern": r"\bx", "maxLength": 4},  # unanchored: the converter refuses
        "n": {"type": "integer", "minimum": 1, "maximum": 9},
        "mode": {"enum": ["a", "b"]},
    },
    "required": ["x", "n"],
}


def test_a_part_the_converter_cannot_write_is_relaxed_not_the_whole_tool() -> None:
    """It used to fall back to "any object" for the whole tool, silently."""
    text = call_grammar([("odd", ODD)]).text
    n, mode, code = (param_regex(text, name) for name in ("n", "mode", "code"))
    assert [v for v in range(-5, 15) if n.fullmatch(str(v))] == list(range(1, 10))
    assert mode.fullmatch('"a"') and not mode.fullmatch('"c"')
    assert code.fullmatch('"abcd"') and not code.fullmatch('"abcde"') and not code.fullmatch("7")
    assert coverage(ODD) == Coverage(
        "partial",
        (
            "x: no grammar for it (Unrecognized schema: {'not': {'type': 'string'}})",
            'code: pattern left out of the grammar (Pattern must start with "^" and end with "$")',
        ),
    )
    assert validate_arguments(ODD, {"x": 1, "n": 3, "code": "abc"}) == ["code: 'abc' does not match '\\\\bx'"]
    assert validate_arguments(ODD, {"x": "s", "n": 3}) == [
        "x: 's' should not be valid under {'type': 'string'}"
    ]


def test_an_invalid_schema_refuses_calls_instead_of_crashing_the_loop() -> None:
    broken = {"type": "object", "properties": {"x": {"type": "weird"}}}
    message = "properties/x/type: 'weird' is not valid under any of the given schemas"
    assert validate_arguments(broken, {"x": 1}) == [
        f"the tool's own schema is invalid, so no call to it can be checked: {message}"
    ]
    assert coverage(broken) == Coverage(
        "none", (f"the schema itself is invalid ({message}): every call is refused",)
    )
    assert call_grammar([("broken", broken)]).text


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        (FORECAST, Coverage("full")),
        (
            {"type": "object", "properties": {"any": True, "s": {"type": "string", "format": "date"}}},
            Coverage("full"),
        ),
        (
            {
                "type": "object",
                "properties": {
                    "t": {"type": "number", "minimum": 0, "exclusiveMaximum": 2},
                    "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
                    "step": {"type": "integer", "multipleOf": 5},
                    "pick": {"oneOf": [{"type": "integer"}, {"type": "number"}]},
                    "off": False,
                },
            },
            Coverage(
                "partial",
                (
                    "off: a false schema (no value is valid)",
                    "t: minimum/exclusiveMaximum of a decimal number",
                    "tags: uniqueItems",
                    "step: multipleOf",
                    "pick: oneOf (the grammar allows any of them, the check exactly one)",
                ),
            ),
        ),
        (
            {"type": "object", "properties": {"p": {"$ref": "other.json#/Place"}}},
            Coverage(
                "none", ("no grammar for the arguments (Unsupported ref other.json#/Place): any JSON object",)
            ),
        ),
    ],
    ids=["pydantic-style", "true-schema", "partial", "none"],
)
def test_coverage_says_what_only_the_check_after_parsing_catches(
    parameters: dict[str, Any], expected: Coverage
) -> None:
    assert coverage(parameters) == expected
    assert call_grammar([("t", parameters)], budget=256).text  # a grammar is always written


MCP_SERVER = '''
from typing import Annotated, Literal
from pydantic import BaseModel, Field
from mcp.server.mcpserver import MCPServer

app = MCPServer("odd")

class Place(BaseModel):
    city: Annotated[str, Field(max_length=20)]

@app.tool()
def forecast(
    place: Place, days: Annotated[int, Field(ge=1, le=1000)], units: Literal["metric", "imperial"] = "metric"
) -> str:
    """The weather."""
    return "sunny"

@app.tool()
def tune(
    temperature: Annotated[float, Field(ge=0, le=2)], code: Annotated[str, Field(pattern=r"\\bx")]
) -> str:
    """Tune something."""
    return "tuned"

app.run()
'''


@pytest.mark.slow
def test_tools_list_and_verbose_ask_say_what_the_grammar_leaves_out(
    g3chat_home: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    script = tmp_path / "odd_server.py"
    script.write_text(MCP_SERVER)
    config = g3chat_home / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "mcp.json").write_text(
        json.dumps({"mcpServers": {"odd": {"command": sys.executable, "args": [str(script)]}}})
    )
    proc = run_cli("tools", "list", "--json", timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = {row["name"]: row for row in map(json.loads, proc.stdout.splitlines())}
    assert rows["read_file"]["arguments_check"] == {"grammar": "full", "after_parsing": []}
    assert rows["forecast"]["arguments_check"] == {"grammar": "full", "after_parsing": []}
    assert rows["tune"]["arguments_check"] == {
        "grammar": "partial",
        "after_parsing": [
            'code: pattern left out of the grammar (Pattern must start with "^" and end with "$")',
            "temperature: minimum/maximum of a decimal number",
        ],
    }
    table = run_cli("tools", "list", timeout=300).stdout
    lines = table.splitlines()
    assert lines[0].split() == ["NAME", "SOURCE", "APPROVAL", "ARGUMENTS", "DESCRIPTION"]
    assert [line.split()[:4] for line in lines if line.startswith(("forecast ", "tune "))] == [
        ["forecast", "mcp", "yes", "grammar"],
        ["tune", "mcp", "yes", "grammar+check"],
    ]
    assert "Not enforced by the grammar, only checked after parsing" in table
    assert "  tune: code: pattern left out of the grammar" in table
    ask = run_cli(
        *(
            "ask",
            "--tools",
            "tune,forecast",
            "--tool-choice",
            "none",
            "--verbose",
            "-n",
            "1",
            "--no-save",
            "hi",
        ),
        env=cli_env,
        timeout=300,
    )
    assert ask.returncode == 0, ask.stderr
    assert (
        "g3chat: tune: not enforced by the grammar, only checked after parsing: code: pattern left out"
        in ask.stderr
    )
    assert "g3chat: forecast:" not in ask.stderr
