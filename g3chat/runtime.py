"""The one factory the CLI, the TUI and the tests use to build g3chat's parts from paths and settings."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from g3chat.config import Settings, load_settings
from g3chat.core.engine.base import Engine
from g3chat.core.models.resolve import ResolvedModel, resolve_model
from g3chat.core.store import Store
from g3chat.paths import Paths

if TYPE_CHECKING:
    from g3chat.tui.app import G3ChatApp


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

    def engine_factory(
        self,
        cli_model: str | None = None,
        *,
        n_ctx: int | None = None,
        threads: int | None = None,
        verbose: bool = False,
    ) -> Callable[[], Engine]:
        """A function that finds the model and builds its engine (not loaded), for a background worker.

        Resolving may assemble the offline test model the first time, which takes a while: the TUI calls
        this in its loading thread, so the window is up before any of it happens.
        """

        def build() -> Engine:
            resolved = self.resolve_model(cli_model)
            return self.make_engine(resolved, n_ctx=n_ctx, threads=threads, verbose=verbose)

        return build

    def chat_app(
        self,
        store: Store,
        *,
        engine: Engine | None = None,
        engine_factory: Callable[[], Engine] | None = None,
        conversation_id: int | None = None,
    ) -> G3ChatApp:
        """The chat UI over this runtime's settings and paths (imports Textual only now)."""
        from g3chat.tui.app import G3ChatApp

        return G3ChatApp(
            settings=self.settings,
            store=store,
            paths=self.paths,
            engine=engine,
            engine_factory=engine_factory,
            conversation_id=conversation_id,
        )
