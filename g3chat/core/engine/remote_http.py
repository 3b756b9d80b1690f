"""HTTP for :class:`RemoteEngine`: one-line errors, retries with backoff, and cancellation that cannot hang.

The client is httpx2 (pydantic's maintained fork of httpx, which huggingface_hub uses too): httpx itself
imports its command-line module, and with it rich and click, on ``import httpx``, which the headless core
must not do.

Every request opens a fresh connection (no keep-alive pool), and an httpx ``trace`` hook hands this module
the connection's socket as soon as it exists. :class:`CancelWatch` shuts that socket down the moment the
cancel event is set, so a cancel interrupts even a read that is blocked on a stalled server; the server sees
the connection close and stops generating. Read timeouts bound how long a silent server is waited for.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx2 as httpx

from g3chat.core.engine.openai_wire import error_text
from g3chat.core.errors import (
    ContextOverflowError,
    G3ChatError,
    ServerAuthError,
    ServerFailedError,
    ServerTimeoutError,
    ServerUnreachableError,
    ServerURLError,
)

RETRY_STATUSES = frozenset({500, 502, 503, 504})
MAX_RETRY_AFTER_S = 10.0


def normalize_base_url(url: str) -> str:
    """``http(s)://host[:port][/path]`` without a trailing slash; a bare host gets ``/v1``."""
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ServerURLError(f"{url!r} is not an http(s) URL (for example http://127.0.0.1:8080/v1)")
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ServerURLError(f"{url!r} has an invalid port") from None
    path = parts.path.rstrip("/") or "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def server_root(base_url: str) -> str:
    """Where llama-server and llama-cpp-python keep their own endpoints (``/tokenize``, ``/extras``)."""
    return base_url[: -len("/v1")] if base_url.endswith("/v1") else base_url


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def connect_error(exc: Exception, base_url: str) -> tuple[G3ChatError, bool]:
    """A one-line error for a failed connection, and whether trying again might help."""
    where = f"cannot reach the server at {base_url}"
    host = urlsplit(base_url).hostname
    for cause in _causes(exc):
        if isinstance(cause, socket.gaierror):
            return ServerUnreachableError(f"{where}: host name {host!r} not found"), False
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = cause.verify_message or "certificate verify failed"
            return ServerUnreachableError(f"{where}: TLS certificate not trusted ({reason})"), False
        if isinstance(cause, ssl.SSLError):
            reason = cause.reason or str(cause)
            return ServerUnreachableError(f"{where}: TLS handshake failed ({reason})"), False
        if isinstance(cause, ConnectionRefusedError):
            return ServerUnreachableError(f"{where}: connection refused (is the server running?)"), True
        if isinstance(cause, ConnectionResetError):
            return ServerUnreachableError(f"{where}: connection reset"), True
    if isinstance(exc, httpx.TimeoutException):
        return ServerUnreachableError(f"{where}: timed out connecting"), True
    if isinstance(exc, httpx.RemoteProtocolError):
        return ServerUnreachableError(f"{where}: the server closed the connection before answering"), True
    return ServerUnreachableError(f"{where}: {' '.join(str(exc).split()) or type(exc).__name__}"), False


def status_error(response: httpx.Response, base_url: str) -> G3ChatError:
    """A one-line error for an HTTP error status (the body must already be read)."""
    code = response.status_code
    detail = error_text(response.content) or response.reason_phrase
    head = f"the server at {base_url} answered {code} {response.reason_phrase}".rstrip()
    if code in (401, 403):
        if "authorization" in {k.lower() for k in response.request.headers}:
            hint = "check the key in the variable engine.api_key_env names"
        else:
            hint = "it needs an API key: set engine.api_key_env to the name of a variable holding it"
        return ServerAuthError(f"{head}: {detail}; {hint}")
    if code == 400 and "context" in detail.lower():
        return ContextOverflowError(f"{head}: {detail}")
    error = ServerFailedError(f"{head}: {detail}")
    error.status = code
    return error


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return min(MAX_RETRY_AFTER_S, max(0.0, float(value)))
    except ValueError:
        return None


class CancelWatch:
    """Shuts a request's socket down when ``cancel`` is set, waking any read blocked on it."""

    def __init__(self, cancel: threading.Event | None, poll_s: float = 0.05) -> None:
        self.cancel = cancel
        self.poll_s = poll_s
        self._sockets: list[Any] = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def trace(self, name: str, info: dict[str, Any]) -> None:
        """httpx/httpcore trace hook: remember each new connection's socket."""
        if name in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            sock = info["return_value"].get_extra_info("socket")
            if sock is not None:
                with self._lock:
                    self._sockets.append(sock)
                if self.cancel is not None and self.cancel.is_set():
                    self._shutdown()

    def _shutdown(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError, ValueError):
                sock.shutdown(socket.SHUT_RDWR)

    def _run(self) -> None:
        assert self.cancel is not None
        while not self._done.is_set():
            if self.cancel.wait(self.poll_s):
                self._shutdown()
                return

    def __enter__(self) -> CancelWatch:
        if self.cancel is not None:
            self._thread = threading.Thread(target=self._run, name="g3chat-cancel-watch", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()


class HttpSession:
    """An httpx client for one server: auth header, timeouts, retries with backoff, one-line errors."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        read_timeout: float = 120.0,
        retries: int = 3,
        backoff_s: float = 0.5,
    ) -> None:
        self.base_url = base_url
        self.retries = retries
        self.backoff_s = backoff_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(read_timeout, connect=min(10.0, read_timeout)),
            limits=httpx.Limits(max_keepalive_connections=0),
            follow_redirects=True,
        )
        self.read_timeout = read_timeout

    def close(self) -> None:
        self.client.close()

    def url(self, path: str, *, root: bool = False) -> str:
        return f"{server_root(self.base_url) if root else self.base_url}/{path.lstrip('/')}"

    def send(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        stream: bool = False,
        watch: CancelWatch | None = None,
        retry_connect: bool = True,
        retries: int | None = None,
    ) -> httpx.Response | None:
        """Send, retrying 5xx answers and failed connections with exponential backoff.

        Returns the response with status < 400 (unread when ``stream``), or None when the cancel event was
        set first. Raises a one-line G3ChatError otherwise. Nothing is retried once a response is returned:
        a half-streamed answer is never asked for again.
        """
        cancel = watch.cancel if watch is not None else None
        extensions = {"trace": watch.trace} if watch is not None else {}
        attempts = (self.retries if retries is None else retries) + 1
        for attempt in range(1, attempts + 1):
            if cancel is not None and cancel.is_set():
                return None
            delay = self.backoff_s * 2 ** (attempt - 1)
            request = self.client.build_request(method, url, json=json_body, extensions=extensions)
            try:
                response = self.client.send(request, stream=stream)
            except httpx.TimeoutException as exc:
                if cancel is not None and cancel.is_set():
                    return None
                if isinstance(exc, httpx.ConnectTimeout) and retry_connect and attempt < attempts:
                    continue
                raise ServerTimeoutError(
                    f"the server at {self.base_url} sent nothing for {self.read_timeout:g} s (read timeout)"
                ) from None
            except httpx.TransportError as exc:
                if cancel is not None and cancel.is_set():
                    return None
                error, retryable = connect_error(exc, self.base_url)
                if retryable and retry_connect and attempt < attempts:
                    if _pause(cancel, delay):
                        return None
                    continue
                raise error from None
            if response.status_code < 400:
                return response
            response.read()
            response.close()
            if response.status_code in RETRY_STATUSES and attempt < attempts:
                wait = _retry_after(response) or delay
                if _pause(cancel, wait):
                    return None
                continue
            error = status_error(response, self.base_url)
            if response.status_code in RETRY_STATUSES and attempts > 1:
                error.args = (f"{error} (after {attempts} attempts)",)
            raise error
        raise AssertionError("unreachable")  # pragma: no cover


def _pause(cancel: threading.Event | None, seconds: float) -> bool:
    """Wait before the next attempt; True when cancelled meanwhile."""
    if cancel is None:
        time.sleep(seconds)
        return False
    return cancel.wait(seconds)
