"""`g3chat roles list/show` and the role errors of `ask --role` (none of these loads a model)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli

SHIPPED = ["review", "shell", "summarise", "translate"]


def user_roles(home: Path) -> Path:
    folder = home / "config" / "roles"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_list_shows_shipped_and_user_roles(g3chat_home: Path) -> None:
    (user_roles(g3chat_home) / "pirate.toml").write_text(
        'description = "Talks like a pirate"\nsystem_prompt = "Arr."\ntemperature = 1.2\n'
    )
    proc = run_cli("roles", "list")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["NAME", "SOURCE", "DESCRIPTION"]
    assert [line.split()[0] for line in lines[1:]] == sorted([*SHIPPED, "pirate"])
    assert any(line.split()[:2] == ["pirate", "user"] and "Talks like a pirate" in line for line in lines)
    proc = run_cli("roles", "list", "--json")
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    pirate = next(r for r in rows if r["name"] == "pirate")
    assert pirate["source"] == "user" and pirate["params"] == {"temperature": 1.2} and pirate["tools"] is None
    shell = next(r for r in rows if r["name"] == "shell")
    assert shell["source"] == "shipped" and shell["params"]["temperature"] == 0.2 and shell["tools"] is False


def test_broken_role_is_skipped_in_the_list_and_exit_2_by_name(g3chat_home: Path) -> None:
    (user_roles(g3chat_home) / "broken.toml").write_text('system_prompt = "x"\ntop_k = "many"\n')
    proc = run_cli("roles", "list")
    assert proc.returncode == 0 and "broken" not in proc.stdout
    assert proc.stderr.count("\n") == 1 and "broken.toml:2: top_k must be an integer" in proc.stderr
    for args in (["roles", "show", "broken"], ["ask", "--role", "broken", "hi"]):
        proc = run_cli(*args)
        assert proc.returncode == 2, args
        assert proc.stderr.count("\n") == 1 and "broken.toml:2:" in proc.stderr, args


def test_unknown_role_is_one_line_naming_the_known_ones() -> None:
    for args in (["roles", "show", "poet"], ["ask", "--role", "poet", "hi"]):
        proc = run_cli(*args)
        assert proc.returncode == 2
        assert (
            proc.stderr
            == f"g3chat: unknown role 'poet' (known: {', '.join(SHIPPED)}; see 'g3chat roles list')\n"
        )


def test_show_prints_the_system_prompt_and_settings() -> None:
    proc = run_cli("roles", "show", "shell")
    assert proc.returncode == 0, proc.stderr
    assert "temperature = 0.2" in proc.stdout and "tools = false" in proc.stdout
    assert "exactly one command" in proc.stdout
    data = json.loads(run_cli("roles", "show", "shell", "--json").stdout)
    assert data["name"] == "shell" and "exactly one command" in data["system_prompt"]
