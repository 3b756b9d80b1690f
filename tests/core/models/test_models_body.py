"""Reading a download's body in big blocks under an httpx2 response (g3chat.core.models.body)."""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx2 as httpx
import pytest

from g3chat.core.models.body import body_blocks
from tests.hubserver import HubFile, HubServer

SIZE = 3 * 1024 * 1024 + 77
BLOCK = 1 << 20


@pytest.fixture(scope="module")
def data() -> bytes:
    return os.urandom(SIZE)


def read(
    url: str, limit: int, verify: ssl.SSLContext | bool = True, events: list[int] | None = None
) -> list[bytes]:
    """The blocks of the body; ``events`` gets the size of each piece httpx2 itself handed over."""
    with httpx.Client(verify=verify, follow_redirects=True) as client, client.stream("GET", url) as response:
        assert response.status_code == 200
        through_httpx = response.iter_raw

        def counted(chunk_size: int | None = None) -> Iterator[bytes]:
            for piece in through_httpx(chunk_size):
                (events if events is not None else []).append(len(piece))
                yield piece

        response.iter_raw = counted  # type: ignore[method-assign]  # count what httpx2 hands over
        return [bytes(b) for b in body_blocks(response, limit, BLOCK, 5.0)]


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_a_known_length_body_comes_from_the_socket_in_big_blocks(
    data: bytes, tmp_path: Path, tls: bool
) -> None:
    from tests.fixtures.tls import self_signed, server_context

    (tmp_path / "m.gguf").write_bytes(data)
    cert, key = self_signed(tmp_path)
    context = server_context(cert, key) if tls else None
    with HubServer([HubFile("a/b", "m.gguf", tmp_path / "m.gguf")], tls=context) as hub:
        url = f"{hub.endpoint}/a/b/resolve/main/m.gguf"
        verify = ssl.create_default_context(cafile=str(cert)) if tls else True
        events: list[int] = []
        blocks = read(url, SIZE, verify, events)
        assert b"".join(blocks) == data
        assert max(len(b) for b in blocks) == BLOCK and len(blocks) <= SIZE // BLOCK + 2
        # httpx2 hands a body over in pieces of 64 KiB at most: only what came with the headers went
        # through it, the rest was read from the socket.
        assert len(events) == 1 and events[0] <= 64 * 1024
        assert b"".join(read(url, 1000, verify)) == data[:1000]  # never more than asked for


class _Chunked(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for start in range(0, len(self.body), 100_000):
            piece = self.body[start : start + 100_000]
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def chunked(data: bytes) -> Iterator[str]:
    handler = type("Handler", (_Chunked,), {"body": data})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/file"
    server.shutdown()
    server.server_close()


def test_a_chunked_body_goes_through_httpx2_gathered_into_blocks(chunked: str, data: bytes) -> None:
    blocks = read(chunked, SIZE)
    assert b"".join(blocks) == data  # the chunk framing never reaches the file
    assert all(len(b) >= BLOCK for b in blocks[:-1])
    assert b"".join(read(chunked, 250_000)) == data[:250_000]
