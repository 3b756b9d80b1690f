"""``g3chat config``: where the config lives and the effective settings.

``config path`` imports only the paths module: the settings (and msgspec, which checks them) load when shown.
"""

from __future__ import annotations

import json
import sys


def show_path(all_paths: bool, *, json_output: bool = False) -> None:
    from g3chat.paths import Paths

    paths = Paths.from_env()
    if json_output:  # keys: the labels of --all in snake case ("config file" -> config_file)
        places = {name.lower().replace(" ", "_"): str(path) for name, path in paths.describe().items()}
        sys.stdout.write(json.dumps(places, indent=2) + "\n")
        return
    if not all_paths:
        sys.stdout.write(f"{paths.config_file}\n")
        return
    width = max(len(k) for k in paths.describe())
    for name, where in paths.describe().items():
        sys.stdout.write(f"{name.ljust(width)}  {where}\n")


def show_config(docs: bool) -> None:
    import tomlkit

    from g3chat.config import documented_fields, settings_to_dict
    from g3chat.runtime import Runtime

    runtime = Runtime.from_env()
    values = settings_to_dict(runtime.settings)
    notes = {name: doc for name, _default, doc in documented_fields()}
    document = tomlkit.document()
    document.add(
        tomlkit.comment(f"effective settings (file: {runtime.paths.config_file}, plus G3CHAT_* variables)")
    )
    for key, value in values.items():
        if isinstance(value, dict) and key != "keys":
            table = tomlkit.table()
            for name, item in value.items():
                if docs and notes.get(f"{key}.{name}"):
                    table.add(tomlkit.comment(notes[f"{key}.{name}"]))
                table.add(name, item)
            document.add(key, table)
        elif key == "keys":
            table = tomlkit.table()
            if docs:
                table.add(tomlkit.comment(notes["keys"]))
            for name, item in value.items():
                table.add(name, item)
            document.add(key, table)
        else:
            if docs and notes.get(key):
                document.add(tomlkit.comment(notes[key]))
            document.add(key, value)
    sys.stdout.write(tomlkit.dumps(document))
