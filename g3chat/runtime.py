"""The one factory the CLI, the TUI and the tests use to build g3chat's parts from paths and settings."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from g3chat.config import Settings, load_settings
from g3chat.core.engine.base import Engine
from g3chat.core.models.resolve import Resolution, ResolvedModel, resolve_model
from g3chat.core.store import Store
from g3chat.paths import Paths

if TYPE_CHECKING:
    from g3chat.core.models.fit import EngineShape
    from g3chat.core.models.manager import ModelManager


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

    def model_manager(self) -> ModelManager:
        """The model manager over the shared HF cache (HF_HUB_CACHE / HF_HOME), read from the environment."""
        from g3chat.core.models.hubcache import HubConfig
        from g3chat.core.models.manager import ModelManager

        return ModelManager(HubConfig.from_env(self.environ), self.paths.models_dir())

    def engine_shape(self, n_ctx: int | None = None) -> EngineShape:
        from g3chat.core.models.fit import EngineShape

        return EngineShape.from_settings(self.settings.engine, n_ctx)

    def resolve_model(
        self,
        cli_model: str | None = None,
        *,
        n_ctx: int | None = None,
        verify_progress: Callable[[str], None] | None = None,
    ) -> Resolution:
        """The model to load (a :class:`ResolvedModel`), or a :class:`PullOffer` when none is installed."""
        return resolve_model(
            cli_model,
            self.settings.model,
            self.paths.models_dir(),
            manager=self.model_manager,
            shape=self.engine_shape(n_ctx),
            verify_progress=verify_progress,
        )

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
        if n_ctx is None:
            n_ctx = resolved.n_ctx if resolved.n_ctx is not None else engine.n_ctx
        # The plan's layer count applies only while the setting is "all" (-1): a number the user set wins.
        n_gpu_layers = engine.n_gpu_layers
        if n_gpu_layers == -1 and resolved.n_gpu_layers is not None:
            n_gpu_layers = resolved.n_gpu_layers
        return LlamaCppEngine(
            resolved.path,
            n_ctx=n_ctx,
            n_threads=threads or engine.threads or None,
            n_gpu_layers=n_gpu_layers,
            n_batch=engine.n_batch,
            swa_full=engine.swa_full,
            flash_attn=engine.flash_attn,
            verbose=verbose,
            name=resolved.name,
            is_test_model=resolved.is_test_model,
        )
