"""The one factory the CLI, the TUI and the tests use to build g3chat's parts from paths and settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from g3chat.config import Settings, load_settings
from g3chat.core.engine.base import Engine
from g3chat.core.models.resolve import ResolvedModel, resolve_model
from g3chat.core.store import Store
from g3chat.paths import Paths

if TYPE_CHECKING:
    from g3chat.core.tools.setup import ToolSet


@dataclass
class Runtime:
    paths: Paths
    settings: Settings

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Runtime:
        env = os.environ if environ is None else environ
        paths = Paths.from_env(env)
        return cls(paths, load_settings(paths.config_file, env))

    def open_store(self) -> Store:
        self.paths.data_dir()
        return Store(self.paths.db_file)

    def resolve_model(self, cli_model: str | None = None) -> ResolvedModel:
        return resolve_model(cli_model, self.settings.model, self.paths.models_dir())

    def make_engine(
        self,
        resolved: ResolvedModel,
        *,
        n_ctx: int | None = None,
        threads: int | None = None,
        verbose: bool = False,
    ) -> Engine:
        from g3chat.core.engine.llama import LlamaCppEngine

        engine = self.settings.engine
        return LlamaCppEngine(
            resolved.path,
            n_ctx=engine.n_ctx if n_ctx is None else n_ctx,
            n_threads=threads or engine.threads or None,
            n_gpu_layers=engine.n_gpu_layers,
            n_batch=engine.n_batch,
            swa_full=engine.swa_full,
            flash_attn=engine.flash_attn,
            verbose=verbose,
            name=resolved.name,
            is_test_model=resolved.is_test_model,
        )

    def load_tools(self, *, mcp: bool | None = None, roots: list[Path] | None = None) -> ToolSet:
        """Built-in, user and (unless ``mcp`` is False or disabled in the config) MCP tools.

        File tools are confined to the working folder plus ``tools.roots``; close the result when done.
        """
        from g3chat.core.tools.builtins import BuiltinSettings
        from g3chat.core.tools.setup import load_tools, parse_roots

        settings = self.settings.tools
        use_mcp = settings.mcp if mcp is None else mcp
        return load_tools(
            tools_dir=self.paths.tools_dir(),
            mcp_file=self.paths.mcp_file if use_mcp else None,
            roots=roots if roots is not None else [Path.cwd(), *parse_roots(settings.roots)],
            settings=BuiltinSettings(settings.output_limit, settings.shell_timeout, settings.timeout),
            mcp_errlog=self.paths.cache_dir() / "mcp-servers.log",
        )
