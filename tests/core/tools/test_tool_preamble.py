"""The tools section of the system prompt: compact, complete, stable, and within its token budget."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from g3chat.core.tools.builtins import builtin_tools
from g3chat.core.tools.confine import Roots
from g3chat.core.tools.model import Tool
from g3chat.core.tools.protocol import TOOLS_INTRO, compact_schema, tool_line, tool_spec, tools_prompt

# Gemma tokens of the built-in tools' section (tool_choice=auto): 836 before it was shortened, 509 after
# (bench/preamble.py prints the table); each costs about 20 ms of time to first token for Gemma 3n E2B on
# two cores. Raise this only for a reason worth that.
BUDGET = 540
# Words a schema's values must keep (they decide whether a call is valid).
VALIDITY_KEYS = (
    "type",
    "enum",
    "const",
    "required",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minItems",
    "maxItems",
    "default",
)


def builtin_specs(root: Path) -> tuple[list[Tool], list[dict[str, Any]]]:
    tools = builtin_tools(Roots([root]))
    return tools, [tool_spec(t.name, t.description, t.parameters) for t in tools]


def listed(section: str) -> dict[str, dict[str, Any]]:
    """The tool lines of a section, parsed, by name."""
    lines = [json.loads(line) for line in section.splitlines() if line.startswith('{"name":"')]
    return {line["name"]: line for line in lines}


def test_every_builtin_keeps_what_a_valid_call_depends_on(tmp_path: Path) -> None:
    """Derived from the tool definitions: every property, its type, bounds and enum, and the required list."""
    tools, specs = builtin_specs(tmp_path)
    shown = listed(tools_prompt(specs))
    assert list(shown) == [t.name for t in tools]
    for tool in tools:
        line = shown[tool.name]
        assert line["description"] == tool.description
        parameters = line["parameters"]
        properties = tool.parameters.get("properties", {})
        assert list(parameters.get("properties", {})) == list(properties), tool.name
        assert parameters.get("required", []) == list(tool.parameters.get("required", [])), tool.name
        for name, schema in properties.items():
            for key in VALIDITY_KEYS:
                assert parameters["properties"][name].get(key) == schema.get(key), (tool.name, name, key)


def test_the_section_is_compact_json_and_the_same_bytes_every_time(tmp_path: Path) -> None:
    _, specs = builtin_specs(tmp_path)
    first = tools_prompt(specs)
    assert first == tools_prompt([dict(s) for s in specs])
    for text in (line for line in first.splitlines() if line.startswith('{"name":"')):
        parsed = json.loads(text)
        assert text == json.dumps(parsed, ensure_ascii=False, separators=(",", ":"))  # no spaces
        assert text == tool_line(parsed)  # compacting twice changes nothing
        assert '"type":"object"' not in text
    assert first.startswith(TOOLS_INTRO)


def test_the_choice_rule_comes_last_after_a_shared_prefix(tmp_path: Path) -> None:
    _, specs = builtin_specs(tmp_path)
    auto, required = tools_prompt(specs, "auto"), tools_prompt(specs, "required")
    named = tools_prompt(specs, "read_file")
    assert auto.endswith("\n\nCall a tool only when you need it.")
    assert required.endswith("\n\nYou must call one of these tools now.")
    assert named.endswith("\n\nYou must call the tool read_file now.")
    prefix = auto.rsplit("\n\n", 1)[0]
    assert required.startswith(prefix + "\n\n") and named.startswith(prefix + "\n\n")


def test_compact_schema_drops_only_noise() -> None:
    """What MCP servers often send: titles, $schema, additionalProperties false; a property named title."""
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "title": "Arguments",
        "additionalProperties": False,
        "properties": {
            "title": {"type": "string", "title": "Title", "maxLength": 80},
            "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "minItems": 1},
            "meta": {
                "type": "object",
                "properties": {"n": {"type": "integer", "minimum": 0, "default": 1}},
                "additionalProperties": False,
            },
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "either": {"anyOf": [{"type": "string", "title": "S"}, {"type": "null"}]},
        },
        "required": ["title"],
    }
    assert compact_schema(schema, top=True) == {
        "properties": {
            "title": {"type": "string", "maxLength": 80},
            "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "minItems": 1},
            "meta": {"properties": {"n": {"type": "integer", "minimum": 0, "default": 1}}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "either": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
        "required": ["title"],
    }
    assert compact_schema({"type": "object"}, top=True) == {}
    assert compact_schema({"type": "object", "properties": {}}, top=True) == {}
    assert tool_line({"name": "now", "description": "", "parameters": {"type": "object"}}) == (
        '{"name":"now","parameters":{}}'
    )


def test_builtin_section_stays_within_its_token_budget(test_model_path: Path, tmp_path: Path) -> None:
    """Counted with Gemma's vocabulary (the test model's; only the vocabulary is loaded)."""
    import llama_cpp

    vocab = llama_cpp.Llama(model_path=str(test_model_path), vocab_only=True, verbose=False)
    _, specs = builtin_specs(tmp_path)
    tokens = len(vocab.tokenize(tools_prompt(specs).encode(), add_bos=False, special=False))
    assert tokens <= BUDGET, f"the built-in tools' section takes {tokens} tokens (budget {BUDGET})"


@pytest.mark.parametrize("choice", ["auto", "required", "calculator"])
def test_forced_and_auto_sections_parse_back_to_the_tools(choice: str, tmp_path: Path) -> None:
    _, specs = builtin_specs(tmp_path)
    assert len(listed(tools_prompt(specs, choice))) == len(specs)
