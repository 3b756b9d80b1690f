"""RemoteEngine against a real ``python -m llama_cpp.server`` on loopback, with faults injected by a proxy."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from g3chat.core.chat import Turn
from g3chat.core.engine.base import Engine
from g3chat.core.engine.remote import RemoteEngine
from g3chat.core.errors import (
    ServerAuthError,
    ServerFailedError,
    ServerTimeoutError,
    ServerUnreachableError,
    UnknownModelError,
)
from g3chat.core.store import Store
from g3chat.core.types import Finished, GenerationParams, TextDelta, Usage, collect, system, user
from tests.fixtures.fault_proxy import Fault, FaultProxy

pytestmark = pytest.mark.model

GREEDY = GenerationParams(temperature=0.0, max_tokens=8, seed=1)
LONG = GenerationParams(temperature=0.0, max_tokens=200, seed=1)
QUESTION = [user("Write a long story about a river.")]


def remote(url: str, key: str | None, **kwargs: Any) -> RemoteEngine:
    kwargs.setdefault("backoff_s", 0.02)
    engine = RemoteEngine(url, api_key=key, **kwargs)
    return engine


@pytest.fixture
def direct(llama_server) -> Iterator[RemoteEngine]:
    engine = remote(llama_server.url, llama_server.api_key)
    engine.load()
    yield engine
    engine.close()


def test_streams_text_usage_and_finish(direct: RemoteEngine) -> None:
    assert isinstance(direct, Engine)
    info = direct.info
    assert info is not None and info.engine == "remote" and info.name == "gemma-test"
    assert info.base_url == direct.base_url and info.engine_label.startswith("remote http://127.0.0.1:")
    events = list(direct.stream_chat([system("Be brief."), user("Name a colour.")], GREEDY))
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) >= 2  # it streamed, piece by piece
    assert isinstance(events[-2], Usage) and events[-1] == Finished("length")
    usage = events[-2]
    # llama-cpp-python's server reports no usage while streaming: one chunk per token, prompt counted by
    # the server's tokenizer, and the numbers are marked as g3chat's.
    assert usage.estimated and usage.completion_tokens == 8
    assert usage.prompt_tokens == direct.count_tokens([system("Be brief."), user("Name a colour.")])
    assert usage.ttft_s is not None and usage.ttft_s > 0 and usage.total_s >= usage.ttft_s


def test_server_token_count_matches_the_local_engine(direct: RemoteEngine, engine) -> None:
    conversation = [system("You are terse."), user("Hello there"), *[user("and again")]]
    assert direct.count_tokens(conversation) == engine.count_tokens(conversation)
    assert direct.token_count_source == "server"


def test_cancel_mid_stream_stops_promptly_and_the_server_recovers(direct: RemoteEngine) -> None:
    cancel = threading.Event()
    received: list[str] = []
    events = []
    for event in direct.stream_chat(QUESTION, LONG, cancel):
        events.append(event)
        if isinstance(event, TextDelta):
            received.append(event.text)
            if len(received) == 3:
                cancel.set()
    assert events[-1] == Finished("cancelled")
    assert len(received) == 3  # nothing after the cancel
    after = collect(direct.stream_chat([user("hi")], GREEDY))  # the server is free again
    assert after.finish_reason in ("length", "stop") and after.text


def test_usage_and_turn_saved_for_a_complete_answer(direct: RemoteEngine, tmp_path: Path) -> None:
    store = Store(tmp_path / "h.db")
    conversation = store.create_conversation("t", model="gemma-test")
    turn = Turn(
        direct, [user("hi")], GREEDY, store=store, conversation_id=conversation.id, model_name="gemma-test"
    )
    text = "".join(e.text for e in turn if isinstance(e, TextDelta))
    assert turn.saved is not None and turn.saved.status == "complete"
    assert turn.saved.text == text and turn.saved.completion_tokens == 8
    store.close()


# ------------------------------------------------------------------------------------------- faults


def proxied(proxy: FaultProxy, server, **kwargs: Any) -> RemoteEngine:
    engine = remote(proxy.url, server.api_key, **kwargs)
    engine.load()
    return engine


def test_dropped_stream_keeps_the_partial_answer_saved_as_error(
    fault_proxy: FaultProxy,
    llama_server,
    tmp_path: Path,
) -> None:
    fault_proxy.add(Fault("drop", after_events=5))  # the role chunk and four tokens, then the line drops
    engine = proxied(fault_proxy, llama_server)
    store = Store(tmp_path / "h.db")
    conversation = store.create_conversation("t")
    turn = Turn(engine, QUESTION, LONG, store=store, conversation_id=conversation.id)
    streamed = "".join(e.text for e in turn if isinstance(e, TextDelta))
    assert streamed and turn.result.finish_reason == "error"
    assert "dropped mid-answer" in (turn.result.error or "")
    assert turn.saved is not None and turn.saved.status == "error" and turn.saved.text == streamed
    assert turn.saved.error == turn.result.error
    assert fault_proxy.calls() == 1  # a half-streamed answer is never asked for again
    store.close()
    engine.close()


def test_stall_mid_stream_hits_the_read_timeout(fault_proxy: FaultProxy, llama_server) -> None:
    fault_proxy.add(Fault("stall", after_events=3))
    # The read timeout must exceed the gap between two tokens on a loaded machine, or it fires too early.
    engine = proxied(fault_proxy, llama_server, read_timeout=4)
    result = collect(engine.stream_chat(QUESTION, LONG))
    assert result.text and result.finish_reason == "error"
    assert result.error is not None and "read timeout" in result.error and "\n" not in result.error
    engine.close()


@pytest.mark.parametrize("after_events", [0, 3], ids=["before-headers", "mid-stream"])
def test_cancel_does_not_wait_for_a_stalled_server(
    fault_proxy: FaultProxy,
    llama_server,
    after_events: int,
) -> None:
    fault_proxy.add(Fault("stall", after_events=after_events))
    engine = proxied(fault_proxy, llama_server, read_timeout=120)
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    started = time.monotonic()
    result = collect(engine.stream_chat(QUESTION, LONG, cancel))
    assert result.finish_reason == "cancelled"
    assert time.monotonic() - started < 60  # far below the 120 s read timeout it would otherwise wait
    engine.close()


def test_5xx_before_the_answer_is_retried_with_backoff(fault_proxy: FaultProxy, llama_server) -> None:
    fault_proxy.add(Fault("status", status=503, times=2))
    engine = proxied(fault_proxy, llama_server, retries=3)
    result = collect(engine.stream_chat([user("hi")], GREEDY))
    assert result.finish_reason == "length" and result.text
    assert fault_proxy.calls() == 3


def test_5xx_that_persists_is_one_line_after_the_last_attempt(fault_proxy: FaultProxy, llama_server) -> None:
    fault_proxy.add(
        Fault("status", status=500, times=None, body={"error": {"message": "CUDA out of memory"}})
    )
    engine = proxied(fault_proxy, llama_server, retries=2)
    with pytest.raises(ServerFailedError) as caught:
        collect(engine.stream_chat([user("hi")], GREEDY))
    message = str(caught.value)
    assert "500" in message and "CUDA out of memory" in message and "after 3 attempts" in message
    assert "\n" not in message and fault_proxy.calls() == 3


def test_missing_and_wrong_api_keys_are_auth_errors(llama_server) -> None:
    with pytest.raises(ServerAuthError, match=r"401 Unauthorized: Invalid API key; it needs an API key"):
        remote(llama_server.url, None).load()
    with pytest.raises(ServerAuthError, match=r"401.*check the key"):
        remote(llama_server.url, "wrong").load()


def test_forbidden_is_an_auth_error(fault_proxy: FaultProxy, llama_server) -> None:
    fault_proxy.add(Fault("status", path="/models", status=403, body={"error": {"message": "not allowed"}}))
    with pytest.raises(ServerAuthError, match="403 Injected: not allowed"):
        remote(fault_proxy.url, llama_server.api_key).load()


def test_unknown_model_lists_the_servers_models(llama_server) -> None:
    engine = remote(llama_server.url, llama_server.api_key, model="gemma-3n-E4B")
    with pytest.raises(UnknownModelError, match=r"has no model 'gemma-3n-E4B' \(it has: gemma-test\)"):
        engine.load()


def test_not_an_openai_server(fault_proxy: FaultProxy, llama_server) -> None:
    fault_proxy.add(Fault("status", path="/models", status=404, body={"detail": "Not Found"}))
    engine = remote(fault_proxy.url, llama_server.api_key, model="gemma-test")
    assert engine.load().name == "gemma-test"  # no model list: the named model is trusted


def test_read_timeout_before_the_answer(fault_proxy: FaultProxy, llama_server) -> None:
    fault_proxy.add(Fault("stall", after_events=0))
    engine = proxied(fault_proxy, llama_server, read_timeout=1)
    with pytest.raises(ServerTimeoutError, match=r"sent nothing for 1 s \(read timeout\)"):
        collect(engine.stream_chat([user("hi")], GREEDY))
    assert fault_proxy.calls() == 1


# -------------------------------------------------------------------------------- connection errors


def closed_port() -> int:
    from tests.fixtures.llama_server import free_port

    return free_port()  # bound and released: nothing listens there


def test_connection_refused_is_one_line_and_not_retried_at_load() -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    started = time.monotonic()
    with pytest.raises(ServerUnreachableError, match="connection refused") as caught:
        remote(url, None, backoff_s=5.0).load()
    assert url in str(caught.value) and "\n" not in str(caught.value)
    assert time.monotonic() - started < 5  # no backoff waits: a wrong address fails at once


def test_connection_closed_before_the_answer_is_retried(fault_proxy: FaultProxy, llama_server) -> None:
    fault_proxy.add(Fault("close", times=1))  # e.g. a load balancer dropping an idle backend
    engine = proxied(fault_proxy, llama_server, retries=2)
    assert collect(engine.stream_chat([user("hi")], GREEDY)).finish_reason == "length"
    assert fault_proxy.calls() == 2


def test_unknown_host_is_one_line() -> None:
    with pytest.raises(ServerUnreachableError, match=r"host name 'g3chat-test\.invalid' not found"):
        remote("http://g3chat-test.invalid:8080/v1", None).load()


def test_https_to_a_plain_http_server_is_a_tls_error(llama_server) -> None:
    with pytest.raises(ServerUnreachableError, match="TLS handshake failed"):
        remote(f"https://127.0.0.1:{llama_server.port}/v1", llama_server.api_key).load()


def test_self_signed_certificate_is_refused_then_trusted_with_ssl_cert_file(
    llama_server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("cryptography")
    from tests.fixtures.tls import self_signed, server_context

    cert, key = self_signed(tmp_path)
    with FaultProxy(llama_server.port, tls=server_context(cert, key)) as proxy:
        with pytest.raises(ServerUnreachableError, match="TLS certificate not trusted"):
            remote(proxy.url, llama_server.api_key).load()
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # as the README says for a private CA
        engine = remote(proxy.url, llama_server.api_key)
        engine.load()
        assert collect(engine.stream_chat([user("hi")], GREEDY)).text
        engine.close()
