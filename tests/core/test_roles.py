"""Roles: shipped and user TOML files, a user role replacing a shipped one, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from g3chat.core.errors import InputError
from g3chat.core.roles import ROLE_KEY, RoleFolders, conversation_params, find_role, load_roles
from g3chat.resources import roles_dir

SHIPPED = ("review", "shell", "summarise", "translate")


def folders(user: Path) -> RoleFolders:
    return RoleFolders(shipped=roles_dir(), user=user)


def test_shipped_roles_load(tmp_path: Path) -> None:
    loaded, failed = load_roles(folders(tmp_path))
    assert failed == []
    assert set(SHIPPED) <= set(loaded)
    for name in SHIPPED:
        role = loaded[name]
        assert role.shipped and role.role.system_prompt.strip() and role.role.description
    shell = loaded["shell"]
    assert "one" in shell.role.system_prompt.lower() and "command" in shell.role.system_prompt.lower()


def test_user_role_replaces_shipped_one_and_params_go_with_the_conversation(tmp_path: Path) -> None:
    (tmp_path / "shell.toml").write_text(
        'description = "mine"\nsystem_prompt = "Reply with fish syntax."\ntemperature = 0.1\ntools = true\n'
    )
    role = find_role("shell", folders(tmp_path))
    assert not role.shipped and role.path == tmp_path / "shell.toml"
    assert role.role.system_prompt == "Reply with fish syntax."
    params = conversation_params(role)
    assert params == {ROLE_KEY: "shell", "temperature": 0.1, "tools": True}


def test_unknown_role_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        find_role("poet", folders(tmp_path))
    message = str(caught.value)
    assert "'poet'" in message and ", ".join(SHIPPED) in message and "\n" not in message


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ('description = "x"\nsystem_prompt = "y"\ntemperature = "hot"\n', ":3:", "temperature"),
        ('system_prompt = "y"\n\ntop_p = 2.0\n', ":3:", "top_p"),
        ('system_prompt = "y"\ncolour = "red"\n', ":2:", "colour"),
        ('system_prompt = "y"\ntemperature = \n', ":2:", "invalid TOML"),
        ('description = "only"\n', ": ", "system_prompt is required"),
    ],
)
def test_broken_role_is_one_line_naming_file_and_line(
    tmp_path: Path, text: str, where: str, words: str
) -> None:
    (tmp_path / "bad.toml").write_text(text)
    loaded, failed = load_roles(folders(tmp_path))
    assert "bad" not in loaded and set(SHIPPED) <= set(loaded)  # the others still load
    assert [f.path.name for f in failed] == ["bad.toml"]
    with pytest.raises(InputError) as caught:
        find_role("bad", folders(tmp_path))
    message = str(caught.value)
    assert f"bad.toml{where}" in message and words in message and "\n" not in message
    assert message == failed[0].error


def test_broken_user_role_is_not_silently_replaced_by_the_shipped_one(tmp_path: Path) -> None:
    (tmp_path / "shell.toml").write_text("system_prompt = 3\n")
    with pytest.raises(InputError, match=r"shell\.toml:1"):
        find_role("shell", folders(tmp_path))
