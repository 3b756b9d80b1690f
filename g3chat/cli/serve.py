"""``g3chat serve``: g3chat's own engine as an OpenAI-compatible endpoint, so editors and agents can share it.

The model is resolved and fitted as for ``ask`` (the ``[engine]`` settings, a projector for images, Gemma
3n's audio weights when installed); the server (:mod:`g3chat.server`, Starlette on uvicorn) listens at
once and answers 503 until the model has loaded in the engine's thread. Listens on 127.0.0.1 unless told
otherwise.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from g3chat.core.engine.base import ModelInfo
from g3chat.core.errors import ConfigError, InputError, ModelFileError
from g3chat.runtime import Runtime


@dataclass
class ServeOptions:
    model: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    ctx: int | None = None
    threads: int | None = None
    api_key_env: str | None = None
    mmproj: str | None = None
    allow_fetch: bool = False
    verbose: bool = False


def _check_port(host: str, port: int) -> None:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise InputError(f"--host {host}: no such address on this machine") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _api_key(name: str | None) -> str | None:
    if not name:
        return None
    key = os.environ.get(name, "").strip()
    if not key:
        raise ConfigError(f"--api-key-env {name}: the variable is not set")
    return key


def run_serve(opts: ServeOptions) -> int:
    import uvicorn

    from g3chat.core.engine.llama import LlamaCppEngine
    from g3chat.core.engine.native_log import native_log
    from g3chat.server.app import Server, ServerConfig
    from g3chat.server.media import MediaReader
    from g3chat.server.worker import EngineWorker

    runtime = Runtime.from_env()
    api_key = _api_key(opts.api_key_env)
    engine, notice = runtime.engine_for(
        model=opts.model, n_ctx=opts.ctx, threads=opts.threads, verbose=opts.verbose, mmproj=opts.mmproj
    )
    if not isinstance(engine, LlamaCppEngine):
        raise ConfigError("serve runs a local model: unset engine.base_url (or G3CHAT_ENGINE__BASE_URL)")
    if notice:
        sys.stderr.write(f"g3chat: {notice}\n")
    _check_port(opts.host, opts.port)
    if not _is_loopback(opts.host):
        sys.stderr.write(
            f"g3chat: warning: serving on {opts.host}: anyone who can reach this machine can use the model"
            f"{'' if api_key else ' (no API key required; see --api-key-env)'}\n"
        )
    native_log.install(opts.verbose)  # llama.cpp's log stays off the terminal unless --verbose
    native_log.take_errors()
    config = ServerConfig(
        model=engine.name,
        aliases=(Path(engine.model_path).stem,),
        api_key=api_key,
        defaults=runtime.settings.generation.params(),
        media=MediaReader(runtime.media_store(), allow_fetch=opts.allow_fetch),
    )
    failure: list[str] = []

    def load() -> ModelInfo:
        started = time.perf_counter()
        try:
            info = engine.load()
        except Exception as exc:
            failure.append(native_log.explain() or str(exc))
            server.should_exit = True  # the model will not load: stop serving, say why
            raise
        sys.stderr.write(f"g3chat: model loaded in {time.perf_counter() - started:.1f} s\n")
        sys.stderr.flush()
        return info

    worker = EngineWorker(engine, load=load)
    log_level = "info" if opts.verbose else "warning"
    app = Server(worker, config).app()
    server = uvicorn.Server(uvicorn.Config(app, host=opts.host, port=opts.port, log_level=log_level))
    shown_host = f"[{opts.host}]" if ":" in opts.host else opts.host
    sys.stderr.write(f"g3chat: serving {engine.name} at http://{shown_host}:{opts.port}/v1 (Ctrl+C stops)\n")
    sys.stderr.flush()
    worker.start()
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl+C it handled: the server stopped as asked
        pass
    finally:
        worker.stop()
        # Free the model while Python is whole: llama.cpp logs as it frees, through g3chat's log callback,
        # which must not run during interpreter shutdown (it crashes there).
        engine.close()
    if failure:
        raise ModelFileError(f"{engine.model_path}: llama.cpp could not load the model: {failure[0]}")
    return 0
