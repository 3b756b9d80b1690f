"""Roles: named presets of a system prompt, sampling settings and tools on/off, kept as TOML files.

g3chat ships a few (the top-level ``roles/`` folder, ``g3chat/_data/roles`` in a wheel); the user's own
live in ``<config>/roles``, one file per role, named after the file (``shell.toml`` is the role ``shell``).
A user role replaces a shipped one of the same name. A role chosen for a conversation is stored in its
params (the sampling values, ``tools``, and the role's name under ``role``) next to its system prompt, so
``ask -c`` and the chat UI keep using it without a schema change.

A broken file is one line naming ``file:line``: listing skips it with a warning, asking for it by name is
an error (exit 2), so a broken user role never silently falls back to the shipped one it was meant to
replace.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from g3chat.core.errors import InputError
from g3chat.core.tomlfile import TomlFileError, read_toml
from g3chat.paths import Paths
from g3chat.resources import roles_dir

ROLE_KEY = "role"  # a conversation's role, by name, in its params
TOOLS_KEY = "tools"  # a conversation's tools on/off, in its params (the chat UI's key)
SAMPLING = ("temperature", "top_k", "top_p", "min_p", "repeat_penalty", "seed", "max_tokens")
_KINDS = {"float": "a number", "int": "an integer", "bool": "true or false", "str": "a string"}


class Role(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One role file. Only ``system_prompt`` is required; an absent setting keeps the configured one."""

    description: str = ""
    system_prompt: str
    temperature: Annotated[float, Meta(ge=0)] | None = None
    top_k: Annotated[int, Meta(ge=0)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    min_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    repeat_penalty: Annotated[float, Meta(ge=0)] | None = None
    seed: int | None = None
    max_tokens: Annotated[int, Meta(ge=1)] | None = None
    tools: bool | None = None

    def __post_init__(self) -> None:
        self.system_prompt = self.system_prompt.strip()  # a TOML multi-line string ends with a newline


class RoleError(InputError):
    """An unknown role, or a role file that cannot be used. Exit code 2."""


@dataclass(frozen=True)
class RoleFolders:
    """Where roles come from: the shipped folder, then the user's (which wins on a name clash)."""

    shipped: Path
    user: Path


def role_folders(paths: Paths) -> RoleFolders:
    """The shipped roles and the user's (``<config>/roles``, created on first use)."""
    return RoleFolders(shipped=roles_dir(), user=paths.roles_dir())


@dataclass(frozen=True)
class LoadedRole:
    name: str
    role: Role
    path: Path
    shipped: bool

    @property
    def sampling(self) -> dict[str, Any]:
        """The sampling settings this role sets (the others stay as configured)."""
        return {k: getattr(self.role, k) for k in SAMPLING if getattr(self.role, k) is not None}

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": "shipped" if self.shipped else "user",
            "path": str(self.path),
            "description": self.role.description,
            "system_prompt": self.role.system_prompt,
            "params": self.sampling,
            "tools": self.role.tools,
        }


@dataclass(frozen=True)
class FailedRole:
    path: Path
    error: str  # one line, starting with file:line


def conversation_params(role: LoadedRole) -> dict[str, Any]:
    """What a conversation started with ``role`` stores in its params."""
    params: dict[str, Any] = {ROLE_KEY: role.name, **role.sampling}
    if role.role.tools is not None:
        params[TOOLS_KEY] = role.role.tools
    return params


def _line_of(text: str, key: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(rf"^\s*{re.escape(key)}\s*=", line):
            return number
    return None


def _explain(error: msgspec.ValidationError) -> tuple[str | None, str]:
    """(key, reason) in the user's words from msgspec's ``Expected `float`, got `str` - at `$.x```."""
    message, _, where = str(error).partition(" - at `$.")
    key = where.rstrip("`") or None
    if found := re.match(r"Object contains unknown field `(.*)`", message):
        known = ", ".join(f for f in Role.__struct_fields__)
        return found.group(1), f"{found.group(1)} is not a role setting (known: {known})"
    if found := re.match(r"Object missing required field `(.*)`", message):
        return None, f"{found.group(1)} is required"
    if found := re.match(r"Expected `(\w+)(?: \| null)?`, got", message):
        return key, f"{key} must be {_KINDS.get(found.group(1), found.group(1))}"
    if found := re.match(r"Expected `\w+(?: \| null)?` (.*)", message):
        return key, f"{key} must be {found.group(1)}"
    return key, message.replace("`", "")


def role_from_file(path: Path) -> Role:
    """Read one role file; any problem is a RoleError of one line naming ``path:line``."""
    try:
        data, text = read_toml(path, "role")
    except TomlFileError as exc:
        raise RoleError(str(exc)) from None
    try:
        return msgspec.convert(data, Role)
    except msgspec.ValidationError as exc:
        key, reason = _explain(exc)
    line = _line_of(text, key) if key else None
    raise RoleError(f"{path}:{line}: {reason}" if line else f"{path}: {reason}")


def load_roles(folders: RoleFolders) -> tuple[dict[str, LoadedRole], list[FailedRole]]:
    """Every role by name (user roles replacing shipped ones), and the files that failed to load."""
    loaded: dict[str, LoadedRole] = {}
    failed: list[FailedRole] = []
    for folder, shipped in ((folders.shipped, True), (folders.user, False)):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            try:
                role = role_from_file(path)
            except RoleError as exc:
                failed.append(FailedRole(path, str(exc)))
                continue
            loaded[path.stem] = LoadedRole(path.stem, role, path, shipped)
    return dict(sorted(loaded.items())), failed


def find_role(name: str, folders: RoleFolders) -> LoadedRole:
    """The role called ``name``; unknown or broken is a one-line RoleError."""
    user_file = folders.user / f"{name}.toml"
    if user_file.is_file():  # the user's file, even broken, is the one they mean
        return LoadedRole(name, role_from_file(user_file), user_file, shipped=False)
    loaded, failed = load_roles(folders)
    if name in loaded:
        return loaded[name]
    broken = next((f for f in failed if f.path.stem == name), None)
    if broken is not None:
        raise RoleError(broken.error)
    known = ", ".join(loaded) or "none"
    raise RoleError(f"unknown role {name!r} (known: {known}; see 'g3chat roles list')")
