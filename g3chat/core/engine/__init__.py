"""Engines turn a list of messages into a stream of events. See :mod:`g3chat.core.engine.base`."""

from g3chat.core.engine.base import Engine, ModelInfo

__all__ = ["Engine", "ModelInfo"]
