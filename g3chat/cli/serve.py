"""``g3chat serve``: the local model as an OpenAI-compatible endpoint, so other tools can share it.

A thin wrapper over llama-cpp-python's own server (``llama_cpp.server``: FastAPI, uvicorn, server-sent
events): g3chat resolves and checks the model as ``ask`` does, applies the ``[engine]`` settings, and for a
GGUF without a chat template registers g3chat's built-in Gemma turn format (llama-cpp-python's own "gemma"
format would drop the system prompt). Listens on 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from dataclasses import dataclass
from typing import Any

from g3chat.core.errors import ConfigError, InputError, ModelFileError
from g3chat.core.prompt import END_OF_TURN, START_OF_TURN, GemmaTurnFormat, render_text
from g3chat.core.types import ROLES, Message, TextPart
from g3chat.runtime import Runtime

CHAT_FORMAT = "g3chat-gemma"


@dataclass
class ServeOptions:
    model: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    ctx: int | None = None
    threads: int | None = None
    api_key_env: str | None = None
    verbose: bool = False


def messages_from_openai(items: list[dict[str, Any]]) -> list[Message]:
    """OpenAI chat messages (string content or text parts) as g3chat messages; other roles are dropped."""
    out: list[Message] = []
    for item in items:
        role = item.get("role")
        if role not in ROLES:
            continue
        content = item.get("content") or ""
        if isinstance(content, list):
            content = "".join(
                p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
            )
        out.append(Message(role, (TextPart(str(content)),)))
    return out


def gemma_prompt(items: list[dict[str, Any]]) -> str:
    """The prompt g3chat's own engine would build, without <bos> (the server adds it when tokenizing)."""
    return render_text(GemmaTurnFormat(bos_text="").segments(messages_from_openai(items)))


def register_chat_format() -> None:
    from llama_cpp import llama_chat_format

    def format_g3chat_gemma(messages: list[dict[str, Any]], **kwargs: Any) -> Any:
        return llama_chat_format.ChatFormatterResponse(
            prompt=gemma_prompt(messages), stop=[END_OF_TURN, START_OF_TURN]
        )

    llama_chat_format.register_chat_format(CHAT_FORMAT)(format_g3chat_gemma)


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


def run_serve(opts: ServeOptions) -> int:
    from g3chat.core.engine.llama import default_threads
    from g3chat.core.engine.native_log import native_log
    from g3chat.core.gguf_file import inspect_gguf

    runtime = Runtime.from_env()
    resolved = runtime.installed_model(opts.model)
    if resolved.notice:
        sys.stderr.write(f"g3chat: {resolved.notice}\n")
    summary = inspect_gguf(resolved.path)
    api_key = None
    if opts.api_key_env:
        api_key = os.environ.get(opts.api_key_env, "").strip()
        if not api_key:
            raise ConfigError(f"--api-key-env {opts.api_key_env}: the variable is not set")
    _check_port(opts.host, opts.port)
    if not _is_loopback(opts.host):
        sys.stderr.write(
            f"g3chat: warning: serving on {opts.host}: anyone who can reach this machine can use the model"
            f"{'' if api_key else ' (no API key required; see --api-key-env)'}\n"
        )

    import uvicorn
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    has_template = bool(str(summary.metadata.get("tokenizer.chat_template") or "").strip())
    if not has_template:
        register_chat_format()
    engine = runtime.settings.engine
    fitted = runtime.fit_context(resolved, opts.ctx)
    if fitted.notice:
        sys.stderr.write(f"g3chat: {fitted.notice}\n")
    n_ctx = fitted.n_ctx
    threads = opts.threads or engine.threads or default_threads()
    model_settings = ModelSettings(
        model=str(resolved.path),
        model_alias=resolved.name,
        n_ctx=n_ctx or 4096,
        n_threads=threads,
        n_threads_batch=threads,
        n_gpu_layers=engine.n_gpu_layers,
        n_batch=engine.n_batch,
        n_ubatch=engine.n_batch,
        flash_attn=engine.flash_attn,
        chat_format=None if has_template else CHAT_FORMAT,
        verbose=opts.verbose,
    )
    # Requests queue for the one model instead of cutting off another client's answer.
    server_settings = ServerSettings(
        host=opts.host, port=opts.port, api_key=api_key, interrupt_requests=False
    )
    native_log.install(opts.verbose)  # llama.cpp's log stays off the terminal unless --verbose
    native_log.take_errors()
    try:
        app = create_app(server_settings=server_settings, model_settings=[model_settings])
    except (ValueError, RuntimeError, OSError) as exc:
        detail = native_log.explain() or str(exc)
        raise ModelFileError(f"{resolved.path}: llama.cpp could not load the model: {detail}") from None
    shown_host = f"[{opts.host}]" if ":" in opts.host else opts.host
    sys.stderr.write(
        f"g3chat: serving {resolved.name} at http://{shown_host}:{opts.port}/v1 (Ctrl+C stops)\n"
    )
    sys.stderr.flush()
    try:
        uvicorn.run(app, host=opts.host, port=opts.port, log_level="info" if opts.verbose else "warning")
    finally:
        # Free the model while Python is whole: llama.cpp logs as it frees, through g3chat's log callback,
        # which must not run during interpreter shutdown (it crashes there).
        from llama_cpp.server import app as server_app

        proxy = getattr(server_app, "_llama_proxy", None)
        if proxy is not None:
            proxy.free()
    return 0
