"""``g3chat roles list`` and ``g3chat roles show``: the presets ``ask --role`` and the chat UI offer."""

from __future__ import annotations

import json
import sys
from typing import Any

from g3chat.core.roles import LoadedRole, find_role, load_roles, role_folders
from g3chat.paths import Paths


def list_roles(json_output: bool) -> None:
    loaded, failed = load_roles(role_folders(Paths.from_env()))
    for failure in failed:
        sys.stderr.write(f"g3chat: warning: {failure.error} (skipped)\n")
    if json_output:
        for role in loaded.values():
            sys.stdout.write(json.dumps(role.to_json(), ensure_ascii=False) + "\n")
        return
    rows = [(r.name, "shipped" if r.shipped else "user", r.role.description) for r in loaded.values()]
    header = ("NAME", "SOURCE", "DESCRIPTION")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(2)]
    for row in [header, *rows]:
        sys.stdout.write(f"{row[0].ljust(widths[0])}  {row[1].ljust(widths[1])}  {row[2]}".rstrip() + "\n")


def _toml_value(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, bool) else str(value).lower()


def show_role(name: str, json_output: bool) -> None:
    role: LoadedRole = find_role(name, role_folders(Paths.from_env()))
    if json_output:
        sys.stdout.write(json.dumps(role.to_json(), ensure_ascii=False) + "\n")
        return
    source = "shipped" if role.shipped else "user"
    lines = [f"# {role.name} ({source}): {role.path}"]
    if role.role.description:
        lines.append(f"description = {_toml_value(role.role.description)}")
    settings = {**role.sampling, **({"tools": role.role.tools} if role.role.tools is not None else {})}
    lines += [f"{key} = {_toml_value(value)}" for key, value in settings.items()]
    lines += ['system_prompt = """', role.role.system_prompt, '"""']
    sys.stdout.write("\n".join(lines) + "\n")
