"""Constrained decoding for the llama.cpp engine: GBNF grammars checked once and cached, lazy ones too.

``Llama.generate(grammar=...)`` puts llama.cpp's grammar sampler into llama-cpp-python's sampler chain.
Two things it cannot do are needed here:

- a *lazy* grammar: free text until a trigger pattern matches (the opening of a ``tool_code`` fence), then
  the grammar from the match on, so prose costs nothing and a call is always well-formed
  (llama.cpp's ``llama_sampler_init_grammar_lazy_patterns``);
- a *fast* one: checking all 262,144 tokens of Gemma's vocabulary at every step costs more than decoding
  a token; :mod:`g3chat.core.engine.grammar_sampler` checks the likely ones first.

So :func:`_install` wraps the model's ``_init_sampler``: handed a :class:`Grammar` from this module, the
chain it builds gets our sampler in the grammar sampler's place (same position, every other sampler as
llama-cpp-python made it). A grammar llama.cpp cannot parse would make it return a null sampler (and
crash later), so every grammar is compiled once here first; a bad one is an :class:`EngineError`.
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Sequence
from typing import Any

from g3chat.core.engine.grammar_sampler import on_demand_sampler
from g3chat.core.engine.native_log import native_log
from g3chat.core.errors import EngineError

ROOT = "root"
# Trigger patterns run through std::regex (ECMAScript) inside llama.cpp, where a bad pattern aborts the
# process; only a plain subset is accepted: no group modifiers other than (?:...), no lookbehind.
_UNSAFE_PATTERN = re.compile(r"\(\?(?!:)")


def _grammar_class() -> type:
    from llama_cpp.llama_grammar import LlamaGrammar

    class Grammar(LlamaGrammar):
        """A grammar for g3chat's sampler; lazy when it has ``triggers``."""

        def __init__(self, text: str, triggers: tuple[str, ...]) -> None:
            super().__init__(_grammar=text)
            self.triggers = triggers

    return Grammar


def _check_triggers(triggers: Sequence[str]) -> None:
    for pattern in triggers:
        if not pattern or _UNSAFE_PATTERN.search(pattern):
            raise EngineError(f"unsupported grammar trigger pattern: {pattern!r}")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise EngineError(f"invalid grammar trigger pattern {pattern!r}: {exc}") from None


def _grammar_sampler(vocab: Any, text: str, triggers: Sequence[str]) -> Any:
    """llama.cpp's grammar sampler (lazy with triggers); None when llama.cpp cannot parse the grammar."""
    import llama_cpp

    if not triggers:
        return llama_cpp.llama_sampler_init_grammar(vocab, text.encode("utf-8"), ROOT.encode())
    patterns = (ctypes.c_char_p * len(triggers))(*(p.encode("utf-8") for p in triggers))
    no_tokens = (llama_cpp.llama_token * 0)()
    return llama_cpp.llama_sampler_init_grammar_lazy_patterns(
        vocab, text.encode("utf-8"), ROOT.encode(), patterns, len(triggers), no_tokens, 0
    )


def _install(llm: Any, grammar_class: type[Any]) -> None:
    """Make ``llm`` build g3chat's grammar sampler when ``generate`` is given a ``grammar_class``."""
    import llama_cpp
    from llama_cpp.llama_grammar import LlamaGrammar

    original = llm._init_sampler
    ordinary = llm.tokenize(b"a", add_bos=False, special=False)
    probes = (llm.token_eos(), ordinary[0] if ordinary else 0)

    def init_sampler(*args: Any, grammar: Any = None, **kwargs: Any) -> Any:
        if not isinstance(grammar, grammar_class):
            return original(*args, grammar=grammar, **kwargs)
        chain = original(*args, grammar=LlamaGrammar(_grammar=grammar._grammar), **kwargs)
        names = [
            llama_cpp.llama_sampler_name(llama_cpp.llama_sampler_chain_get(chain.sampler, i))
            for i in range(llama_cpp.llama_sampler_chain_n(chain.sampler))
        ]
        if chain.custom_samplers or b"grammar" not in names:
            raise EngineError("cannot build a grammar sampler with this llama-cpp-python")
        index = names.index(b"grammar")
        tail = [llama_cpp.llama_sampler_chain_remove(chain.sampler, index) for _ in names[index:]]
        llama_cpp.llama_sampler_free(tail[0])  # llama-cpp-python's grammar sampler, replaced by ours
        inner = _grammar_sampler(llm._model.vocab, grammar._grammar, grammar.triggers)
        for sampler in [on_demand_sampler(inner, probes), *tail[1:]]:
            llama_cpp.llama_sampler_chain_add(chain.sampler, sampler)
        return chain

    llm._init_sampler = init_sampler


class GrammarCache:
    """Compiled grammars for one model, by (text, triggers); what ``generate(grammar=...)`` takes."""

    def __init__(self) -> None:
        self._grammars: dict[tuple[str, tuple[str, ...]], Any] = {}
        self._class: type | None = None
        self._installed: Any = None

    def install(self, llm: Any) -> None:
        """Hook ``llm``'s sampler construction; call it once the model is loaded, before any sampling
        (a caller that looks ``_init_sampler`` up before asking for a grammar would miss a later hook)."""
        if self._class is None:
            self._class = _grammar_class()
        if self._installed is not llm:  # a new model instance (after a reload) needs the hook again
            _install(llm, self._class)
            self._installed = llm

    def get(self, llm: Any, text: str, triggers: Sequence[str] = ()) -> Any:
        import llama_cpp

        self.install(llm)
        assert self._class is not None
        key = (text, tuple(triggers))
        grammar = self._grammars.get(key)
        if grammar is not None:
            return grammar
        _check_triggers(key[1])
        native_log.take_errors()
        sampler = _grammar_sampler(llm._model.vocab, text, key[1])
        if not sampler:
            errors = [e for e in native_log.take_errors() if "failed to parse grammar" not in e]
            raise EngineError(f"invalid grammar: {errors[0] if errors else 'llama.cpp could not parse it'}")
        llama_cpp.llama_sampler_free(sampler)
        grammar = self._class(text, key[1])
        if len(self._grammars) >= 32:
            self._grammars.pop(next(iter(self._grammars)))
        self._grammars[key] = grammar
        return grammar
