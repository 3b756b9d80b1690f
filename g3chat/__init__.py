"""g3chat: a terminal chat assistant for Gemma 3n E2B IT, run locally through llama.cpp."""

from __future__ import annotations

__version__ = "0.1.0.dev0"
