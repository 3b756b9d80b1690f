"""``g3chat serve``: g3chat's own engine behind the OpenAI chat-completions wire.

Layers, outside in: :mod:`~g3chat.server.app` (Starlette routes, auth, SSE, disconnects) hands each request
to :mod:`~g3chat.server.worker` (the one thread that owns the engine; requests queue), which runs
:mod:`~g3chat.server.completion` (one answer: Gemma's tool protocol and grammar for one step, never the
tools' execution). :mod:`~g3chat.server.wire_request` and :mod:`~g3chat.server.wire_response` map the wire
to g3chat's types and back; like the completion they are headless and tested on their own.
"""
