"""A local HTTP server that speaks the part of the Hugging Face Hub protocol huggingface_hub 2.x uses.

- ``GET /api/models/{repo}[/revision/{rev}]?blobs=true``: model info with the commit (``sha``) and
  ``siblings`` carrying size and LFS sha256 (what ``HfApi.model_info(files_metadata=True)`` reads);
  ``GET /api/models/{repo}/tree/{rev}``: the tree listing with LFS oids.
- ``HEAD|GET /{repo}/resolve/{rev}/{filename}``: 302 to the "CDN" with ``X-Repo-Commit``, ``X-Linked-Etag``
  (the sha256), ``X-Linked-Size`` and ``ETag``, as the Hub answers for LFS files. The CDN is the same server
  reached as ``localhost`` instead of ``127.0.0.1``: another origin, so huggingface_hub stops at the redirect
  and reads the metadata from it, and must not send the token there.
- ``GET /cdn/{sha256}``: the bytes, with ``Content-Length``, ``ETag`` and ``Range`` (206 + Content-Range).

Knobs for failure tests: ``drop_after[sha] = n`` closes the connection once after sending n bytes of a
response body; ``hold_at[sha] = n`` sends no byte at or past offset n of the file until ``release`` is
set (the connection stays open; a resumed request waits too); ``corrupt.add(sha)`` flips one byte in what
is served; ``offline = True`` answers 503 to everything; ``throttle_s`` slows the transfer down.
Counters: ``sent[sha]`` bytes of body sent, ``requests`` (method, path, Range, Authorization present).
Run as a script to serve files by hand: ``python -m tests.hubserver REPO FILE...``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import ssl
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"
_CHUNK = 4 << 20


@dataclass
class HubFile:
    repo: str
    filename: str
    path: Path
    sha256: str = ""
    size: int = 0

    def __post_init__(self) -> None:
        self.size = self.path.stat().st_size
        if not self.sha256:
            digest = hashlib.sha256()
            with self.path.open("rb") as fh:
                while chunk := fh.read(8 << 20):
                    digest.update(chunk)
            self.sha256 = digest.hexdigest()


@dataclass
class HubState:
    files: list[HubFile]
    commit: str = COMMIT
    drop_after: dict[str, int] = field(default_factory=dict)
    hold_at: dict[str, int] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)
    corrupt: set[str] = field(default_factory=set)
    offline: bool = False
    throttle_s: float = 0.0  # pause after every 256 KiB sent (to make a download slow enough to interrupt)
    sent: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    requests: list[tuple[str, str, str | None, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def repo_files(self, repo: str) -> list[HubFile]:
        return [f for f in self.files if f.repo == repo]

    def by_sha(self, sha: str) -> HubFile | None:
        return next((f for f in self.files if f.sha256 == sha), None)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    # ------------------------------------------------------------------ helpers
    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _json(self, data: object) -> None:
        self._send(200, json.dumps(data).encode(), {"Content-Type": "application/json"})

    def _not_found(self, code: str, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        self._send(
            404, body, {"Content-Type": "application/json", "X-Error-Code": code, "X-Error-Message": message}
        )

    # ------------------------------------------------------------------ routes
    def do_HEAD(self) -> None:
        self._route()

    def do_GET(self) -> None:
        self._route()

    def _route(self) -> None:
        state = self.server.state
        path = unquote(urlparse(self.path).path)
        with state.lock:
            state.requests.append(
                (
                    self.command,
                    path,
                    self.headers.get("Range"),
                    "authorization" in {k.lower() for k in self.headers},
                )
            )
        if state.offline:
            self._send(503, b"offline")
            return
        if match := re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/.*)?", path):
            self._tree(match.group(1))
        elif match := re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path):
            self._model_info(match.group(1))
        elif match := re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path):
            self._resolve(match.group(1), match.group(3))
        elif match := re.fullmatch(r"/cdn/([0-9a-f]{64})", path):
            self._blob(match.group(1))
        else:
            self._not_found("EntryNotFound", f"no route {path}")

    def _model_info(self, repo: str) -> None:
        files = self.server.state.repo_files(repo)
        if not files:
            self._send(404, b'{"error":"Repository not found"}', {"X-Error-Code": "RepoNotFound"})
            return
        siblings = [
            {
                "rfilename": f.filename,
                "size": f.size,
                "blobId": hashlib.sha1(f.sha256.encode()).hexdigest(),
                "lfs": {"size": f.size, "sha256": f.sha256, "pointerSize": 134},
            }
            for f in files
        ]
        self._json(
            {
                "id": repo,
                "modelId": repo,
                "sha": self.server.state.commit,
                "private": False,
                "siblings": siblings,
            }
        )

    def _tree(self, repo: str) -> None:
        entries = [
            {
                "type": "file",
                "path": f.filename,
                "size": f.size,
                "oid": hashlib.sha1(f.sha256.encode()).hexdigest(),
                "lfs": {"oid": f.sha256, "size": f.size, "pointerSize": 134},
            }
            for f in self.server.state.repo_files(repo)
        ]
        self._json(entries)

    def _resolve(self, repo: str, filename: str) -> None:
        state = self.server.state
        if not state.repo_files(repo):
            self._send(404, b"", {"X-Error-Code": "RepoNotFound"})
            return
        found = next((f for f in state.repo_files(repo) if f.filename == filename), None)
        if found is None:
            self._send(404, b"", {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": state.commit})
            return
        self._send(
            302,
            b"",
            {
                "Location": f"{self.server.cdn}/cdn/{found.sha256}",
                "X-Repo-Commit": state.commit,
                "X-Linked-Etag": f'"{found.sha256}"',
                "X-Linked-Size": str(found.size),
                "ETag": f'"{hashlib.sha1(found.sha256.encode()).hexdigest()}"',
            },
        )

    def _blob(self, sha: str) -> None:
        state = self.server.state
        found = state.by_sha(sha)
        if found is None:
            self._not_found("EntryNotFound", "no such blob")
            return
        start, end = 0, found.size - 1
        status = 200
        wanted = self.headers.get("Range")
        if wanted and (match := re.fullmatch(r"bytes=(\d+)-(\d*)", wanted.strip())):
            start = int(match.group(1))
            end = int(match.group(2)) if match.group(2) else found.size - 1
            if start >= found.size:
                self._send(416, b"", {"Content-Range": f"bytes */{found.size}"})
                return
            status = 206
        length = end - start + 1
        self.send_response(status)
        self.send_header("Content-Length", str(length))
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("ETag", f'"{sha}"')
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{found.size}")
        self.end_headers()
        if self.command == "HEAD":
            return
        self.wfile.flush()
        with state.lock:
            drop = state.drop_after.pop(sha, None)
            hold = state.hold_at.get(sha)
        budget = length if drop is None else min(length, drop)
        if sha in state.corrupt:
            self._send_corrupt(found, start, budget)
        else:
            self._sendfile(found, start, budget, hold)
        if budget < length:  # simulate a dropped connection: close without the rest of the body
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    def _count(self, sha: str, n: int) -> None:
        with self.server.state.lock:
            self.server.state.sent[sha] += n

    def _sendfile(self, found: HubFile, start: int, count: int, hold: int | None = None) -> None:
        out = self.connection.fileno()
        throttle = self.server.state.throttle_s
        chunk = 256 << 10 if throttle else _CHUNK
        with found.path.open("rb") as fh:
            offset, left = start, count
            while left > 0:
                if hold is not None and offset >= hold:
                    self.server.state.release.wait(300)  # held back: the client sees a stalled socket
                    hold = None
                if throttle:
                    time.sleep(throttle)
                step = min(left, chunk, hold - offset) if hold is not None else min(left, chunk)
                try:
                    if isinstance(self.connection, ssl.SSLSocket):  # sendfile would bypass TLS
                        fh.seek(offset)
                        data = fh.read(step)
                        self.connection.sendall(data)
                        n = len(data)
                    else:
                        n = os.sendfile(out, fh.fileno(), offset, step)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True
                    return
                if n == 0:
                    break
                self._count(found.sha256, n)
                offset += n
                left -= n

    def _send_corrupt(self, found: HubFile, start: int, count: int) -> None:
        middle = found.size // 2
        with found.path.open("rb") as fh:
            fh.seek(start)
            left, position = count, start
            while left > 0:
                chunk = bytearray(fh.read(min(left, _CHUNK)))
                if not chunk:
                    break
                if position <= middle < position + len(chunk):
                    chunk[middle - position] ^= 0xFF
                try:
                    self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True
                    return
                self._count(found.sha256, len(chunk))
                position += len(chunk)
                left -= len(chunk)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: HubState
    cdn: str


class HubServer:
    """Start with ``with HubServer([...]) as hub:``; ``hub.endpoint`` is what HF_ENDPOINT should be."""

    def __init__(self, files: list[HubFile], commit: str = COMMIT, tls: ssl.SSLContext | None = None) -> None:
        self.state = HubState(files, commit)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = self.state
        if tls is not None:  # HTTPS for the Hub and its "CDN" (tests/fixtures/tls.py's certificate)
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        port = self._server.server_address[1]
        scheme = "https" if tls is not None else "http"
        self.endpoint = f"{scheme}://127.0.0.1:{port}"
        self._server.cdn = f"{scheme}://localhost:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def sent(self, sha: str) -> int:
        with self.state.lock:
            return self.state.sent[sha]

    def blob_requests(self) -> list[tuple[str, str, str | None, bool]]:
        with self.state.lock:
            return [r for r in self.state.requests if r[1].startswith("/cdn/")]


if __name__ == "__main__":  # pragma: no cover - manual use
    repo, *paths = sys.argv[1:]
    server = HubServer([HubFile(repo, Path(p).name, Path(p)) for p in paths])
    with server:
        print(f"HF_ENDPOINT={server.endpoint}", flush=True)
        threading.Event().wait()
