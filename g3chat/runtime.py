"""The one factory the CLI, the TUI and the tests use to build g3chat's parts from paths and settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

from g3chat.config import Settings, load_settings
from g3chat.core.engine.base import Engine
from g3chat.core.media.store import MediaStore
from g3chat.core.models.resolve import ResolvedModel, find_projector, resolve_model
from g3chat.core.store import Store
from g3chat.paths import Paths


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

    def media_store(self) -> MediaStore:
        return MediaStore(self.paths.media_dir())

    def resolve_model(self, cli_model: str | None = None, cli_mmproj: str | None = None) -> ResolvedModel:
        """The model file, and its projector (``--mmproj``, configured, or found beside the model)."""
        resolved = resolve_model(cli_model, self.settings.model, self.paths.models_dir())
        mmproj = find_projector(resolved.path, cli_mmproj, self.settings.engine.mmproj)
        return replace(resolved, mmproj=mmproj)

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
            speculative=engine.speculative,
            state_dir=self.paths.kv_cache_dir(),
            state_disk_mb=engine.state_cache_mb,
            state_memory_mb=engine.state_memory_mb,
            verbose=verbose,
            name=resolved.name,
            is_test_model=resolved.is_test_model,
            mmproj=resolved.mmproj,
        )
