"""The one factory the CLI, the TUI and the tests use to build g3chat's parts from paths and settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from g3chat.config import Settings, load_settings
from g3chat.core.engine.base import Engine
from g3chat.core.errors import ConfigError
from g3chat.core.models.resolve import ResolvedModel, resolve_model
from g3chat.core.store import Store
from g3chat.paths import Paths


@dataclass
class Runtime:
    paths: Paths
    settings: Settings
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Runtime:
        env = os.environ if environ is None else environ
        paths = Paths.from_env(env)
        return cls(paths, load_settings(paths.config_file, env), env)

    def open_store(self) -> Store:
        self.paths.data_dir()
        return Store(self.paths.db_file)

    def resolve_model(self, cli_model: str | None = None) -> ResolvedModel:
        return resolve_model(cli_model, self.settings.model, self.paths.models_dir())

    def server_url(self, cli_server: str | None = None) -> str | None:
        """The OpenAI-compatible server to use (``--server``, else ``engine.base_url``), or None: local."""
        return (cli_server or "").strip() or self.settings.engine.base_url.strip() or None

    def api_key(self) -> str | None:
        name = self.settings.engine.api_key_env.strip()
        if not name:
            return None
        key = self.environ.get(name, "").strip()
        if not key:
            raise ConfigError(f"engine.api_key_env names {name}, but {name} is not set in the environment")
        return key

    def make_remote_engine(self, base_url: str, model: str | None = None) -> Engine:
        """A RemoteEngine for ``base_url``; ``model`` (else ``engine.model``) is the server's model name."""
        from g3chat.core.engine.remote import RemoteEngine

        engine = self.settings.engine
        return RemoteEngine(
            base_url,
            model=model or engine.model or None,
            api_key=self.api_key(),
            read_timeout=engine.read_timeout,
            retries=engine.retries,
        )

    def engine_for(
        self,
        *,
        model: str | None = None,
        server: str | None = None,
        n_ctx: int | None = None,
        threads: int | None = None,
        verbose: bool = False,
    ) -> tuple[Engine, str | None]:
        """The engine to run (not yet loaded) and a one-line notice to show, if any.

        With ``server`` or ``engine.base_url`` set: a RemoteEngine, and ``model`` names the server's model.
        Otherwise llama.cpp in this process on the GGUF that ``model`` (or the config) resolves to.
        """
        url = self.server_url(server)
        if url:
            return self.make_remote_engine(url, model), None
        resolved = self.resolve_model(model)
        return self.make_engine(resolved, n_ctx=n_ctx, threads=threads, verbose=verbose), resolved.notice

    def make_engine(
        self,
        resolved: ResolvedModel | None = None,
        *,
        n_ctx: int | None = None,
        threads: int | None = None,
        verbose: bool = False,
        server: str | None = None,
    ) -> Engine:
        """llama.cpp on ``resolved`` (default: the configured model), or a RemoteEngine when ``server`` or
        ``engine.base_url`` is set. Prefer :meth:`engine_for`, which also returns the notice to show."""
        url = self.server_url(server)
        if url:
            return self.make_remote_engine(url)
        from g3chat.core.engine.llama import LlamaCppEngine

        resolved = resolved or self.resolve_model()
        engine = self.settings.engine
        return LlamaCppEngine(
            resolved.path,
            n_ctx=engine.n_ctx if n_ctx is None else n_ctx,
            n_threads=threads or engine.threads or None,
            n_gpu_layers=engine.n_gpu_layers,
            n_batch=engine.n_batch,
            swa_full=engine.swa_full,
            flash_attn=engine.flash_attn,
            speculative=engine.speculative,
            state_dir=self.paths.kv_cache_dir(),
            state_disk_mb=engine.state_cache_mb,
            state_memory_mb=engine.state_memory_mb,
            verbose=verbose,
            name=resolved.name,
            is_test_model=resolved.is_test_model,
        )
