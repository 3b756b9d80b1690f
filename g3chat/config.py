"""The one typed configuration: a TOML file plus ``G3CHAT_*`` environment overrides.

Every field is declared once below as a msgspec type with its constraints and documentation
(``Annotated[float, Meta(ge=0, le=1, description=...)]``): msgspec checks the file and the environment
against them, ``g3chat config show --docs`` prints the descriptions, and :func:`_explain` turns msgspec's
error into the one-line message users see. Precedence, lowest first: defaults, the config file, the
environment (``G3CHAT_MODEL``, ``G3CHAT_<SECTION>__<FIELD>``, e.g. ``G3CHAT_GENERATION__TEMPERATURE=0.2``),
then command-line flags. A malformed file or variable is a :class:`ConfigError` naming the file and line
(exit code 2).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import msgspec
from msgspec import Meta

from g3chat.core.errors import ConfigError
from g3chat.core.tomlfile import TomlFileError, read_toml
from g3chat.core.types import GenerationParams

ENV_PREFIX = "G3CHAT_"
# Empty, or an http(s) URL; msgspec reports a pattern miss as a regex, so the field carries its own words.
_URL = r"^$|^\s*https?://[^/\s]+"
_URL_ERROR = {"error": "must be an http(s) URL such as http://127.0.0.1:8080/v1, or empty"}


class _Table(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A config table: values are checked against the declared types, and an unknown key is an error."""


class GenerationSettings(_Table):
    """Sampling. Defaults are Gemma 3n's recommended values."""

    temperature: Annotated[float, Meta(ge=0, description="Sampling temperature; 0 is greedy.")] = 1.0
    top_k: Annotated[int, Meta(ge=0, description="Keep the k most likely tokens; 0 disables.")] = 64
    top_p: Annotated[float, Meta(ge=0, le=1, description="Nucleus sampling threshold.")] = 0.95
    min_p: Annotated[
        float, Meta(ge=0, le=1, description="Drop tokens below min_p x the top probability.")
    ] = 0.0
    repeat_penalty: Annotated[float, Meta(ge=0, description="Penalty for repeated tokens; 1 disables.")] = 1.0
    seed: Annotated[int, Meta(description="Random seed; -1 picks a new one each time.")] = -1
    max_tokens: Annotated[
        int, Meta(ge=0, description="Most tokens in one answer; 0 means until the context is full.")
    ] = 0
    system_prompt: Annotated[str, Meta(description="System prompt for new conversations.")] = ""

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


class EngineSettings(_Table):
    """How the model runs: llama.cpp in this process, or an OpenAI-compatible server (``base_url``)."""

    n_ctx: Annotated[
        int, Meta(ge=0, description="Context window in tokens; 0 uses the model's trained maximum.")
    ] = 8192
    threads: Annotated[int, Meta(ge=0, description="CPU threads; 0 uses the number of physical cores.")] = 0
    n_gpu_layers: Annotated[
        int,
        Meta(
            ge=-1,
            description="Layers to offload to a GPU when this llama.cpp build has one; -1 offloads all.",
        ),
    ] = -1
    n_batch: Annotated[int, Meta(ge=1, description="Prompt tokens evaluated per batch.")] = 512
    flash_attn: Annotated[
        bool,
        Meta(
            description="Use flash attention (faster decode on long contexts; CPU, CUDA and Metal support "
            "it). Turn off if your GPU backend does not."
        ),
    ] = True
    speculative: Annotated[
        Literal["auto", "on", "off"],
        Meta(
            description="Prompt-lookup speculative decoding: faster when answers repeat the conversation's "
            "text. auto: on when sampling without a seed, off for greedy (temperature 0) or seeded runs so "
            "they stay reproducible (llama.cpp computes a batch of tokens slightly differently from one "
            "token at a time); on; off."
        ),
    ] = "auto"
    state_cache_mb: Annotated[
        int,
        Meta(
            ge=0,
            description="Disk budget for saved KV states of long conversations (continue them in a new "
            "process without re-reading history); 0 disables.",
        ),
    ] = 2048
    state_memory_mb: Annotated[
        int,
        Meta(
            ge=0,
            description="Memory budget for KV states of recent conversations (fast switching); 0 disables.",
        ),
    ] = 512
    mmproj: Annotated[
        str,
        Meta(
            description="Vision/audio projector (mmproj GGUF) for attachments; empty looks for one beside "
            "the model (mmproj*.gguf)."
        ),
    ] = ""
    audio_weights: Annotated[
        str,
        Meta(
            description="Gemma 3n's audio encoder weights: a safetensors file or an mmproj GGUF holding "
            "the audio tower; empty uses the projector when it has the tower, else what 'g3chat models "
            "pull --audio' installed."
        ),
    ] = ""
    swa_full: Annotated[
        bool,
        Meta(
            description="Keep the full sliding-window KV cache. Costs memory on long contexts but lets "
            "regenerate and edit reuse the cache; false saves memory and re-evaluates history when they "
            "roll back far."
        ),
    ] = True
    base_url: Annotated[
        str,
        Meta(
            pattern=_URL,
            extra=_URL_ERROR,
            description="OpenAI-compatible server to use instead of llama.cpp in this process, e.g. "
            "http://127.0.0.1:8080/v1 (llama-server, vLLM, Ollama); empty runs the model locally.",
        ),
    ] = ""
    api_key_env: Annotated[
        str,
        Meta(
            description="Name of the environment variable holding the server's API key (e.g. "
            "OPENAI_API_KEY); empty sends none. The key itself never goes in this file."
        ),
    ] = ""
    model: Annotated[
        str, Meta(description="Model name to ask the server for; empty uses the server's only model.")
    ] = ""
    read_timeout: Annotated[
        float,
        Meta(
            ge=1,
            description="Seconds to wait for the server to send anything before giving up (a long prompt "
            "on a slow server needs more).",
        ),
    ] = 120.0
    retries: Annotated[
        int,
        Meta(
            ge=0,
            le=10,
            description="Attempts after the first when the server answers 5xx or the connection fails "
            "before the answer starts (exponential backoff from 0.5 s); a half-streamed answer is never "
            "retried.",
        ),
    ] = 3


class UISettings(_Table):
    """The terminal interface."""

    theme: Annotated[str, Meta(description="Theme name (built-in or from the user themes folder).")] = (
        "g3-dark"
    )
    markdown: Annotated[bool, Meta(description="Render answers as Markdown on a terminal.")] = True
    tools: Annotated[
        bool,
        Meta(
            description="Let the model call tools in the chat UI (reading at once, changes after your "
            "approval); F9 turns them on or off per conversation."
        ),
    ] = True


class ToolSettings(_Table):
    """Tool calls (``g3chat ask --tools``, the chat UI)."""

    max_steps: Annotated[
        int, Meta(ge=1, le=100, description="Most rounds of tool calls before the model must answer.")
    ] = 8
    timeout: Annotated[float, Meta(ge=0.1, description="Seconds a tool call may take.")] = 30.0
    shell_timeout: Annotated[
        float, Meta(ge=0.1, description="Seconds before run_shell kills its command.")
    ] = 30.0
    output_limit: Annotated[
        int, Meta(ge=100, description="Characters of one tool result the model sees.")
    ] = 16000
    roots: Annotated[
        str,
        Meta(
            description="Folders the file tools may use besides the working folder, separated by the "
            "path separator (: or ;)."
        ),
    ] = ""
    mcp: Annotated[bool, Meta(description="Connect to the MCP servers listed in mcp.json.")] = True
    at_file_chars: Annotated[
        int,
        Meta(
            ge=100,
            description="Characters of a text file that @path puts in a message; a longer file is cut, "
            "with a notice.",
        ),
    ] = 12000


class Settings(_Table):
    """Everything configurable. ``model`` is a GGUF path or a catalog variant name."""

    model: Annotated[
        str,
        Meta(
            description="GGUF path or model variant name ('g3chat models list'); empty picks the best "
            "installed one that fits."
        ),
    ] = ""
    generation: GenerationSettings = msgspec.field(default_factory=GenerationSettings)
    engine: EngineSettings = msgspec.field(default_factory=EngineSettings)
    ui: UISettings = msgspec.field(default_factory=UISettings)
    tools: ToolSettings = msgspec.field(default_factory=ToolSettings)
    keys: Annotated[dict[str, str], Meta(description='Key bindings: action = "key".')] = {}


_KIND_ERRORS: dict[Any, str] = {
    float: "must be a number",
    int: "must be an integer",
    bool: "must be true or false",
    str: "must be a string",
    dict: 'must be a table of action = "key" strings',
}
# What an environment variable may say for true or false, beyond the "true"/"false" msgspec reads.
_ENV_BOOLS = {
    **dict.fromkeys(("1", "true", "yes", "on"), True),
    **dict.fromkeys(("0", "false", "no", "off"), False),
}


def _sections() -> dict[str, type[_Table]]:
    """The tables of Settings by name: generation, engine, ui, tools."""
    return {
        f.name: f.type
        for f in msgspec.structs.fields(Settings)
        if isinstance(f.type, type) and issubclass(f.type, _Table)
    }


def _declared(cls: type[_Table], name: str) -> tuple[Any, Meta | None]:
    """The declared type of field ``name`` of ``cls``, without ``Annotated``, and its constraints."""
    kind = next(f.type for f in msgspec.structs.fields(cls) if f.name == name)
    if get_origin(kind) is Annotated:
        kind, *extras = get_args(kind)
        return kind, next((m for m in extras if isinstance(m, Meta)), None)
    return kind, None


def _explain(cls: type[_Table], error: msgspec.ValidationError) -> tuple[list[str], str]:
    """(key path, reason) for ``error`` from converting a mapping to ``cls``, in the user's words.

    msgspec says ``Expected `float` <= 1.0 - at `$.generation.top_p```; the reason is rebuilt from the
    declared field instead: a wrong type names the kind, a failed constraint its bounds.
    """
    message, _, where = str(error).partition(" - at `$")
    path = [part for part in re.sub(r"\[.*?\]", "", where.rstrip("`")).split(".") if part]
    unknown = re.match(r"Object contains unknown field `(.*)`", message)
    owner: Any = cls
    for name in path if unknown else path[:-1]:
        owner = _declared(owner, name)[0]
    if unknown:
        known = "" if owner is Settings else f" (known: {', '.join(sorted(owner.__struct_fields__))})"
        return [*path, unknown.group(1)], f"is not a known setting{known}"
    kind, meta = _declared(owner, path[-1])
    if get_origin(kind) is Literal:
        return path, f"must be one of {', '.join(get_args(kind))}"
    if isinstance(kind, type) and issubclass(kind, _Table):
        return path, "must be a table"
    if meta is not None and ", got `" not in message:  # the kind was right: a declared constraint failed
        if meta.extra:
            return path, meta.extra["error"]
        bounds = f"between {meta.ge} and {meta.le}" if meta.le is not None else f"at least {meta.ge}"
        return path, f"must be {bounds}"
    return path, _KIND_ERRORS[get_origin(kind) or kind]


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


def settings_from_mapping(data: Mapping[str, Any], *, where: str, text: str = "") -> Settings:
    """Settings from a parsed TOML mapping; a problem raises ConfigError naming ``where`` and the line."""
    try:
        return msgspec.convert(data, Settings)
    except msgspec.ValidationError as exc:
        path, reason = _explain(Settings, exc)
    *sections, key = path
    section = ".".join(sections) or None
    line = _line_of(text, section, key) if text else None
    location = f"{where}:{line}" if line else where
    raise ConfigError(f"{location}: {'.'.join(path)} {reason}")


def apply_env(settings: Settings, environ: Mapping[str, str]) -> None:
    """Apply ``G3CHAT_MODEL`` and ``G3CHAT_<SECTION>__<FIELD>`` variables."""
    if environ.get(f"{ENV_PREFIX}MODEL"):
        settings.model = environ[f"{ENV_PREFIX}MODEL"]
    sections = _sections()
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section_name, _, field_name = name[len(ENV_PREFIX) :].lower().partition("__")
        if section_name not in sections:
            raise ConfigError(f"{name}: unknown section {section_name!r} (known: {', '.join(sections)})")
        cls = sections[section_name]
        if field_name not in cls.__struct_fields__:
            known = ", ".join(sorted(cls.__struct_fields__))
            raise ConfigError(f"{name}: unknown setting {field_name!r} (known: {known})")
        kind = _declared(cls, field_name)[0]
        text: Any = raw.strip() if kind in (int, float) else raw
        if kind is bool:
            text = _ENV_BOOLS.get(raw.strip().lower(), raw)
        try:
            value = getattr(msgspec.convert({field_name: text}, cls, strict=False), field_name)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"{name}={raw!r}: {_explain(cls, exc)[1]}") from None
        setattr(getattr(settings, section_name), field_name, value)


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the config file (if it exists) and the environment into a Settings."""
    settings = Settings()
    if path.exists():
        if path.is_dir():
            raise ConfigError(f"{path}: is a directory, expected a TOML file")
        try:
            data, text = read_toml(path, "config")
        except TomlFileError as exc:
            raise ConfigError(str(exc)) from None
        settings = settings_from_mapping(data, where=str(path), text=text)
    apply_env(settings, os.environ if environ is None else environ)
    return settings


def settings_to_dict(settings: Settings) -> dict[str, Any]:
    values: dict[str, Any] = msgspec.to_builtins(settings)
    return values


def documented_fields() -> list[tuple[str, Any, str]]:
    """(dotted name, default, doc) for every field, for ``config show --docs`` and docs/configuration.md."""
    rows: list[tuple[str, Any, str]] = []
    sections = _sections()
    for top in msgspec.structs.fields(Settings):
        owner, prefix = (sections[top.name], f"{top.name}.") if top.name in sections else (Settings, "")
        for f in msgspec.structs.fields(owner) if prefix else [top]:
            default = f.default_factory() if f.default is msgspec.NODEFAULT else f.default
            meta = _declared(owner, f.name)[1]
            rows.append((prefix + f.name, default, (meta and meta.description) or ""))
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
