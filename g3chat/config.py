"""The one typed configuration: a TOML file plus ``G3CHAT_*`` environment overrides.

Every field is documented here (``g3chat config show`` prints them). Precedence, lowest first: defaults,
the config file, the environment (``G3CHAT_MODEL``, ``G3CHAT_<SECTION>__<FIELD>``, e.g.
``G3CHAT_GENERATION__TEMPERATURE=0.2``), then command-line flags. A malformed file or variable is a
:class:`ConfigError` naming the file and line (exit code 2).
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from g3chat.core.errors import ConfigError
from g3chat.core.types import GenerationParams

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ENV_PREFIX = "G3CHAT_"


def _doc(text: str, check: Any = None) -> dict[str, Any]:
    return {"doc": text, "check": check}


def _between(lo: float, hi: float | None = None):
    def check(value: float) -> str | None:
        if value < lo or (hi is not None and value > hi):
            return f"must be between {lo} and {hi}" if hi is not None else f"must be at least {lo}"
        return None

    return check


def _url_or_empty(value: str) -> str | None:
    if value and not re.match(r"^https?://[^/\s]+", value.strip()):
        return "must be an http(s) URL such as http://127.0.0.1:8080/v1, or empty"
    return None


def _one_of(*choices: str):
    def check(value: str) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return check


@dataclass
class GenerationSettings:
    """Sampling. Defaults are Gemma 3n's recommended values."""

    temperature: float = field(default=1.0, metadata=_doc("Sampling temperature; 0 is greedy.", _between(0)))
    top_k: int = field(default=64, metadata=_doc("Keep the k most likely tokens; 0 disables.", _between(0)))
    top_p: float = field(default=0.95, metadata=_doc("Nucleus sampling threshold.", _between(0, 1)))
    min_p: float = field(
        default=0.0, metadata=_doc("Drop tokens below min_p x the top probability.", _between(0, 1))
    )
    repeat_penalty: float = field(
        default=1.0, metadata=_doc("Penalty for repeated tokens; 1 disables.", _between(0))
    )
    seed: int = field(default=-1, metadata=_doc("Random seed; -1 picks a new one each time."))
    max_tokens: int = field(
        default=0, metadata=_doc("Most tokens in one answer; 0 means until the context is full.", _between(0))
    )
    system_prompt: str = field(default="", metadata=_doc("System prompt for new conversations."))

    def params(self) -> GenerationParams:
        return GenerationParams(
            temperature=self.temperature,
            top_k=self.top_k,
            top_p=self.top_p,
            min_p=self.min_p,
            repeat_penalty=self.repeat_penalty,
            seed=None if self.seed < 0 else self.seed,
            max_tokens=self.max_tokens or None,
        )


@dataclass
class EngineSettings:
    """How the model runs: llama.cpp in this process, or an OpenAI-compatible server (``base_url``)."""

    n_ctx: int = field(
        default=8192,
        metadata=_doc("Context window in tokens; 0 uses the model's trained maximum.", _between(0)),
    )
    threads: int = field(
        default=0, metadata=_doc("CPU threads; 0 uses the number of physical cores.", _between(0))
    )
    n_gpu_layers: int = field(
        default=-1,
        metadata=_doc(
            "Layers to offload to a GPU when this llama.cpp build has one; -1 offloads all.", _between(-1)
        ),
    )
    n_batch: int = field(default=512, metadata=_doc("Prompt tokens evaluated per batch.", _between(1)))
    flash_attn: bool = field(
        default=True,
        metadata=_doc(
            "Use flash attention (faster decode on long contexts; CPU, CUDA and Metal support it). Turn off "
            "if your GPU backend does not."
        ),
    )
    speculative: str = field(
        default="auto",
        metadata=_doc(
            "Prompt-lookup speculative decoding: faster when answers repeat the conversation's text. "
            "auto: on when sampling without a seed, off for greedy (temperature 0) or seeded runs so they "
            "stay reproducible (llama.cpp computes a batch of tokens slightly differently from one token "
            "at a time); on; off.",
            _one_of("auto", "on", "off"),
        ),
    )
    state_cache_mb: int = field(
        default=2048,
        metadata=_doc(
            "Disk budget for saved KV states of long conversations (continue them in a new process without "
            "re-reading history); 0 disables.",
            _between(0),
        ),
    )
    state_memory_mb: int = field(
        default=512,
        metadata=_doc(
            "Memory budget for KV states of recent conversations (fast switching); 0 disables.", _between(0)
        ),
    )
    mmproj: str = field(
        default="",
        metadata=_doc(
            "Vision/audio projector (mmproj GGUF) for attachments; empty looks for one beside the model "
            "(mmproj*.gguf)."
        ),
    )
    audio_weights: str = field(
        default="",
        metadata=_doc(
            "Gemma 3n's audio encoder weights: a safetensors file or an mmproj GGUF holding the audio tower; "
            "empty uses the projector when it has the tower, else what 'g3chat models pull --audio' "
            "installed."
        ),
    )
    swa_full: bool = field(
        default=True,
        metadata=_doc(
            "Keep the full sliding-window KV cache. Costs memory on long contexts but lets regenerate and "
            "edit reuse the cache; false saves memory and re-evaluates history when they roll back far."
        ),
    )
    base_url: str = field(
        default="",
        metadata=_doc(
            "OpenAI-compatible server to use instead of llama.cpp in this process, e.g. "
            "http://127.0.0.1:8080/v1 (llama-server, vLLM, Ollama); empty runs the model locally.",
            _url_or_empty,
        ),
    )
    api_key_env: str = field(
        default="",
        metadata=_doc(
            "Name of the environment variable holding the server's API key (e.g. OPENAI_API_KEY); "
            "empty sends none. The key itself never goes in this file."
        ),
    )
    model: str = field(
        default="",
        metadata=_doc("Model name to ask the server for; empty uses the server's only model."),
    )
    read_timeout: float = field(
        default=120.0,
        metadata=_doc(
            "Seconds to wait for the server to send anything before giving up (a long prompt on a slow "
            "server needs more).",
            _between(1),
        ),
    )
    retries: int = field(
        default=3,
        metadata=_doc(
            "Attempts after the first when the server answers 5xx or the connection fails before the answer "
            "starts (exponential backoff from 0.5 s); a half-streamed answer is never retried.",
            _between(0, 10),
        ),
    )


@dataclass
class UISettings:
    """The terminal interface."""

    theme: str = field(
        default="g3-dark", metadata=_doc("Theme name (built-in or from the user themes folder).")
    )
    markdown: bool = field(default=True, metadata=_doc("Render answers as Markdown on a terminal."))
    tools: bool = field(
        default=True,
        metadata=_doc(
            "Let the model call tools in the chat UI (reading at once, changes after your approval); "
            "F9 turns them on or off per conversation."
        ),
    )


@dataclass
class ToolSettings:
    """Tool calls (``g3chat ask --tools``, the chat UI)."""

    max_steps: int = field(
        default=8, metadata=_doc("Most rounds of tool calls before the model must answer.", _between(1, 100))
    )
    timeout: float = field(default=30.0, metadata=_doc("Seconds a tool call may take.", _between(0.1)))
    shell_timeout: float = field(
        default=30.0, metadata=_doc("Seconds before run_shell kills its command.", _between(0.1))
    )
    output_limit: int = field(
        default=16000, metadata=_doc("Characters of one tool result the model sees.", _between(100))
    )
    roots: str = field(
        default="",
        metadata=_doc(
            "Folders the file tools may use besides the working folder, separated by the path separator "
            "(: or ;)."
        ),
    )
    mcp: bool = field(default=True, metadata=_doc("Connect to the MCP servers listed in mcp.json."))


@dataclass
class Settings:
    """Everything configurable. ``model`` is a GGUF path or a catalog variant name."""

    model: str = field(
        default="",
        metadata=_doc(
            "GGUF path or model variant name ('g3chat models list'); empty picks the best installed "
            "one that fits."
        ),
    )
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    ui: UISettings = field(default_factory=UISettings)
    tools: ToolSettings = field(default_factory=ToolSettings)
    keys: dict[str, str] = field(default_factory=dict, metadata=_doc('Key bindings: action = "key".'))


_SECTION_TYPES = {
    "generation": GenerationSettings,
    "engine": EngineSettings,
    "ui": UISettings,
    "tools": ToolSettings,
}


def _coerce(value: Any, kind: type, *, from_text: bool) -> Any:
    """Convert ``value`` to ``kind`` or raise ValueError with a short reason."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        if from_text and str(value).strip().lower() in ("1", "true", "yes", "on"):
            return True
        if from_text and str(value).strip().lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError("must be true or false")
    if kind is int:
        if isinstance(value, bool):
            raise ValueError("must be an integer")
        if isinstance(value, int):
            return value
        if from_text:
            try:
                return int(str(value).strip())
            except ValueError:
                pass
        raise ValueError("must be an integer")
    if kind is float:
        if isinstance(value, bool):
            raise ValueError("must be a number")
        if isinstance(value, (int, float)):
            return float(value)
        if from_text:
            try:
                return float(str(value).strip())
            except ValueError:
                pass
        raise ValueError("must be a number")
    if kind is str:
        if isinstance(value, str):
            return value
        raise ValueError("must be a string")
    raise ValueError(f"unsupported type {kind}")  # pragma: no cover


def _field_types(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _kind(f: dataclasses.Field) -> type:
    return {"float": float, "int": int, "str": str, "bool": bool}[str(f.type)]


def _set(target: Any, f: dataclasses.Field, raw: Any, *, from_text: bool) -> None:
    value = _coerce(raw, _kind(f), from_text=from_text)
    check = f.metadata.get("check")
    problem = check(value) if check else None
    if problem:
        raise ValueError(problem)
    setattr(target, f.name, value)


def _line_of(text: str, section: str | None, key: str) -> int | None:
    """Best-effort line number of ``key`` (inside ``[section]``) in TOML ``text``."""
    current = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        header = re.match(r"^\[\s*([A-Za-z0-9_.-]+)\s*\]", stripped)
        if header:
            current = header.group(1)
            continue
        if current == section and re.match(rf"^{re.escape(key)}\s*=", stripped):
            return number
    return None


def apply_mapping(settings: Settings, data: Mapping[str, Any], *, where: str, text: str = "") -> None:
    """Apply a parsed TOML mapping to ``settings``; problems raise ConfigError naming ``where`` and line."""

    def fail(section: str | None, key: str, reason: str) -> None:
        line = _line_of(text, section, key) if text else None
        dotted = f"{section}.{key}" if section else key
        location = f"{where}:{line}" if line else where
        raise ConfigError(f"{location}: {dotted} {reason}")

    for key, value in data.items():
        if key == "model":
            if not isinstance(value, str):
                fail(None, key, "must be a string")
            settings.model = value
        elif key == "keys":
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                fail(None, key, 'must be a table of action = "key" strings')
            settings.keys.update(value)
        elif key in _SECTION_TYPES:
            if not isinstance(value, dict):
                fail(None, key, "must be a table")
            section = getattr(settings, key)
            fields = _field_types(_SECTION_TYPES[key])
            for name, raw in value.items():
                if name not in fields:
                    fail(key, name, f"is not a known setting (known: {', '.join(sorted(fields))})")
                try:
                    _set(section, fields[name], raw, from_text=False)
                except ValueError as exc:
                    fail(key, name, str(exc))
        else:
            fail(None, key, "is not a known setting")


def apply_env(settings: Settings, environ: Mapping[str, str]) -> None:
    """Apply ``G3CHAT_MODEL`` and ``G3CHAT_<SECTION>__<FIELD>`` variables."""
    if environ.get(f"{ENV_PREFIX}MODEL"):
        settings.model = environ[f"{ENV_PREFIX}MODEL"]
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section_name, _, field_name = name[len(ENV_PREFIX) :].lower().partition("__")
        if section_name not in _SECTION_TYPES:
            raise ConfigError(
                f"{name}: unknown section {section_name!r} (known: {', '.join(_SECTION_TYPES)})"
            )
        fields = _field_types(_SECTION_TYPES[section_name])
        if field_name not in fields:
            raise ConfigError(f"{name}: unknown setting {field_name!r} (known: {', '.join(sorted(fields))})")
        try:
            _set(getattr(settings, section_name), fields[field_name], raw, from_text=True)
        except ValueError as exc:
            raise ConfigError(f"{name}={raw!r}: {exc}") from None


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the config file (if it exists) and the environment into a Settings."""
    settings = Settings()
    if path.exists():
        if path.is_dir():
            raise ConfigError(f"{path}: is a directory, expected a TOML file")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read config: {exc}") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            match = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
            reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
            location = f"{path}:{match.group(1)}:{match.group(2)}" if match else str(path)
            raise ConfigError(f"{location}: invalid TOML: {reason}") from None
        apply_mapping(settings, data, where=str(path), text=text)
    apply_env(settings, os.environ if environ is None else environ)
    return settings


def settings_to_dict(settings: Settings) -> dict[str, Any]:
    return dataclasses.asdict(settings)


def documented_fields() -> list[tuple[str, Any, str]]:
    """(dotted name, default, doc) for every field, for ``config show --docs`` and the README."""
    rows: list[tuple[str, Any, str]] = [("model", "", Settings.__dataclass_fields__["model"].metadata["doc"])]
    for section, cls in _SECTION_TYPES.items():
        for f in dataclasses.fields(cls):
            rows.append((f"{section}.{f.name}", f.default, f.metadata.get("doc", "")))
    rows.append(("keys", {}, Settings.__dataclass_fields__["keys"].metadata["doc"]))
    return rows


def write_setting(path: Path, key: str, value: Any) -> None:
    """Set (or, with ``None``, remove) ``key`` in the config file, keeping everything else.

    ``key`` is top-level (``"model"``) or dotted (``"ui.theme"``: the table is created when missing). The
    file is edited with tomlkit, so the user's comments, order and formatting survive, and replaced
    atomically (a temporary file renamed over it), so a failure never leaves half a config behind.
    """
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    text = ""
    if path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read config: {exc}") from None
    try:
        document = tomlkit.parse(text)
    except TOMLKitError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    if "." in key:
        *sections, leaf = key.split(".")
        table: Any = document
        for name in sections:
            if name not in table:
                if value is None:
                    break
                table[name] = tomlkit.table()
            table = table[name]
        else:
            if value is None:
                table.pop(leaf, None)
            else:
                table[leaf] = value
    elif value is None:
        document.pop(key, None)
    elif key in document:
        document[key] = value
    else:
        # A new top-level key must come before the first [table], or TOML would put it inside that table:
        # rebuild the document item by item with the key in front of the first table.
        rebuilt = tomlkit.document()
        placed = False
        for item_key, item in document.body:
            if not placed and isinstance(item, (tomlkit.items.Table, tomlkit.items.AoT)):
                rebuilt.add(key, value)
                placed = True
            if item_key is None:
                rebuilt.add(item)
            else:
                rebuilt.append(item_key, item)
        if not placed:
            rebuilt.add(key, value)
        document = rebuilt
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(tomlkit.dumps(document), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"{path}: cannot write config: {exc.strerror or exc}") from None
