"""Where g3chat keeps its files. One module owns every path; nothing is created until asked for.

``G3CHAT_HOME`` overrides every directory at once (tests set it): config, data and cache then live in
``$G3CHAT_HOME/{config,data,cache}``. Otherwise the platform's conventional directories are used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "g3chat"
HOME_ENV = "G3CHAT_HOME"


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class Paths:
    """The three roots g3chat uses; the properties below derive every file from them."""

    config_root: Path
    data_root: Path
    cache_root: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Paths:
        env = os.environ if environ is None else environ
        home = env.get(HOME_ENV)
        if home:
            base = Path(home).expanduser()
            return cls(base / "config", base / "data", base / "cache")
        import platformdirs

        return cls(
            Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
            Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
            Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
        )

    # Files (their parent directory is created on first use by whoever writes them).
    @property
    def config_file(self) -> Path:
        return self.config_root / "config.toml"

    @property
    def db_file(self) -> Path:
        return self.data_root / "history.db"

    @property
    def mcp_file(self) -> Path:
        """MCP servers, in the ``mcpServers`` JSON format Claude Desktop uses."""
        return self.config_root / "mcp.json"

    # Directories, created the first time they are asked for.
    def config_dir(self) -> Path:
        return _ensure(self.config_root)

    def data_dir(self) -> Path:
        return _ensure(self.data_root)

    def cache_dir(self) -> Path:
        return _ensure(self.cache_root)

    def themes_dir(self) -> Path:
        """User theme files (one TOML file per theme)."""
        return _ensure(self.config_root / "themes")

    def tools_dir(self) -> Path:
        """User tools (Python files whose ``@tool`` functions join the tool registry)."""
        return _ensure(self.config_root / "tools")

    def roles_dir(self) -> Path:
        """User roles (one TOML file per role; a user role replaces a shipped one of the same name)."""
        return _ensure(self.config_root / "roles")

    def models_dir(self) -> Path:
        """Models g3chat manages itself (the offline test model, local copies)."""
        return _ensure(self.data_root / "models")

    def media_dir(self) -> Path:
        """Attachments (images, audio), stored once each under their sha256; history rows point here."""
        return _ensure(self.data_root / "media")

    def kv_cache_dir(self) -> Path:
        """Saved KV states of long conversations (safe to delete at any time)."""
        return self.cache_root / "kv"

    def describe(self) -> dict[str, str]:
        return {
            "config file": str(self.config_file),
            "history database": str(self.db_file),
            "user themes": str(self.config_root / "themes"),
            "user tools": str(self.config_root / "tools"),
            "user roles": str(self.config_root / "roles"),
            "MCP servers": str(self.mcp_file),
            "models": str(self.data_root / "models"),
            "attachments": str(self.data_root / "media"),
            "cache": str(self.cache_root),
            "saved KV states": str(self.cache_root / "kv"),
        }
