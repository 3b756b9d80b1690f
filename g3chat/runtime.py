"""The one factory the CLI, the TUI and the tests use to build g3chat's parts from paths and settings."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from g3chat.config import Settings, load_settings
from g3chat.core.engine.base import Engine, EngineFactory
from g3chat.core.errors import ConfigError, InputError
from g3chat.core.media.store import MediaStore
from g3chat.core.models.resolve import PullOffer, Resolution, ResolvedModel, locate_projector, resolve_model
from g3chat.core.store import Store
from g3chat.paths import Paths

if TYPE_CHECKING:
    from g3chat.core.engine.remote import RemoteEngine
    from g3chat.core.models.ctxfit import ContextFit
    from g3chat.core.models.fit import EngineShape
    from g3chat.core.models.manager import ModelManager
    from g3chat.core.tools.setup import ToolSet
    from g3chat.tui.app import G3ChatApp


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

    def media_store(self) -> MediaStore:
        return MediaStore(self.paths.media_dir())

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

    def installed_model(self, cli_model: str | None = None, *, n_ctx: int | None = None) -> ResolvedModel:
        """:meth:`resolve_model`, or the one-line InputError naming the pull command when none is there."""
        resolution = self.resolve_model(cli_model, n_ctx=n_ctx)
        if isinstance(resolution, PullOffer):
            raise InputError(f"no model is installed: run 'g3chat models pull {resolution.variant}'")
        return resolution

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

    def make_remote_engine(self, base_url: str, model: str | None = None) -> RemoteEngine:
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
        on_offer: Callable[[PullOffer], ResolvedModel] | None = None,
        verify_progress: Callable[[str], None] | None = None,
        mmproj: str | None = None,
    ) -> tuple[Engine, str | None]:
        """The engine to run (not yet loaded) and a one-line notice to show, if any.

        With ``server`` or ``engine.base_url`` set: a RemoteEngine, and ``model`` names the server's model.
        Otherwise llama.cpp in this process on the GGUF that ``model`` (or the config) resolves to; when no
        model is installed, ``on_offer`` decides about pulling the recommended one (without it: an error
        naming the command). The projector (mmproj) for attachments is ``mmproj``, else ``engine.mmproj``,
        else the one the model manager found, else a single ``mmproj*.gguf`` beside the model.
        """
        url = self.server_url(server)
        if url:
            return self.make_remote_engine(url, model), None
        resolution = self.resolve_model(model, n_ctx=n_ctx, verify_progress=verify_progress)
        if isinstance(resolution, PullOffer):
            if on_offer is None:
                raise InputError(f"no model is installed: run 'g3chat models pull {resolution.variant}'")
            resolution = on_offer(resolution)
        projector = locate_projector(
            resolution.path, mmproj, self.settings.engine.mmproj, resolution.projector
        )
        resolution = replace(resolution, projector=projector)
        fitted = self.fit_context(resolution, n_ctx)
        notice = "; ".join(n for n in (resolution.notice, fitted.notice) if n) or None
        engine = self.make_engine(resolution, n_ctx=fitted.n_ctx, threads=threads, verbose=verbose)
        return engine, notice

    def fit_context(self, resolved: ResolvedModel, n_ctx: int | None = None) -> ContextFit:
        """The context to load ``resolved`` with, decided before llama.cpp allocates anything: ``n_ctx`` (from
        ``--ctx``; refused with a one-line InputError when it does not fit memory), else the plan's or the
        configured one (lowered to what fits, with a notice); never above the model's trained context."""
        from g3chat.core.models.ctxfit import fit_context

        explicit = n_ctx is not None
        if n_ctx is None:
            n_ctx = resolved.n_ctx if resolved.n_ctx is not None else self.settings.engine.n_ctx
        projector = resolved.projector
        projector_bytes = projector.stat().st_size if projector is not None and projector.is_file() else 0
        return fit_context(
            resolved.path,
            self.engine_shape(n_ctx),
            self.model_manager().hardware(),
            explicit=explicit,
            name=resolved.name,
            projector=projector_bytes,
        )

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

        resolved = resolved or self.installed_model()
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
            speculative=engine.speculative,
            state_dir=self.paths.kv_cache_dir(),
            state_disk_mb=engine.state_cache_mb,
            state_memory_mb=engine.state_memory_mb,
            verbose=verbose,
            name=resolved.name,
            is_test_model=resolved.is_test_model,
            mmproj=resolved.projector,
            audio_weights=self.audio_weights(resolved.projector),
        )

    def audio_weights(self, projector: Path | None = None) -> list[Path]:
        """Gemma 3n audio weights to try, best first: ``engine.audio_weights`` alone when set; else the
        projector when it carries the audio tower, then what ``models pull --audio`` installed."""
        from g3chat.core.audio.install import installed, text_width

        configured = self.settings.engine.audio_weights.strip()
        if configured:
            path = Path(configured).expanduser()
            if not path.is_file():
                raise ConfigError(f"engine.audio_weights: {configured}: no such file")
            return [path]
        with_tower = projector is not None and projector.is_file() and text_width(projector) is not None
        return [
            *([projector] if projector is not None and with_tower else []),
            *installed(self.paths.models_dir()),
        ]

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

    def engine_factory(
        self,
        *,
        model: str | None = None,
        server: str | None = None,
        n_ctx: int | None = None,
        threads: int | None = None,
        verbose: bool = False,
    ) -> EngineFactory:
        """:meth:`engine_for`, deferred: the chat UI calls it in its loading thread, after the window is up
        (resolving can take a while: verifying or assembling a model). With no model installed it raises
        the InputError naming the pull command, which the UI shows."""
        return partial(
            self.engine_for, model=model, server=server, n_ctx=n_ctx, threads=threads, verbose=verbose
        )

    def chat_app(
        self,
        store: Store,
        *,
        engine: Engine | None = None,
        engine_factory: EngineFactory | None = None,
        conversation_id: int | None = None,
        tools_factory: Callable[[], ToolSet] | None = None,
    ) -> G3ChatApp:
        """The chat UI over this runtime's settings and paths (imports Textual only now). Its tools are
        :meth:`load_tools`'s unless ``tools_factory`` says otherwise; they load when first needed."""
        from g3chat.tui.app import G3ChatApp

        return G3ChatApp(
            settings=self.settings,
            store=store,
            paths=self.paths,
            engine=engine,
            engine_factory=engine_factory,
            conversation_id=conversation_id,
            tools_factory=tools_factory or self.load_tools,
        )
