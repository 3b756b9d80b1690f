"""Tool calls: loop overhead per call, grammar sampling cost, and forced-call validity on a real model.

1. Round-trip overhead per tool call, excluding the tool and the model: the loop runs against the
   scripted FakeEngine with a no-op tool, and a plain turn with the same engine is the baseline; what is
   left is g3chat's own work per call (tool prompt, grammar, parsing, schema validation, approval, the
   timeout thread, result text, and with --store the SQLite writes).
2. Decode speed of the real model with no grammar, a lazy grammar still waiting for its trigger, a forced
   call grammar through g3chat's sampler, and the same grammar through llama-cpp-python's own grammar
   sampler (every vocabulary token checked at every step) as the baseline.
3. Forced-choice validity: every built-in tool named as tool_choice (and ``required``) × prompts × seeds on
   the real model; the share of answers that parse as one call and validate against the tool's schema.

    python bench/tools.py [--model PATH] [--threads 2] [--calls 200] [--prompts 3] [--seeds 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _models import MODEL_HELP, resolve_model

from g3chat.core.chat import Turn
from g3chat.core.engine.fake import FakeEngine
from g3chat.core.store import Store
from g3chat.core.tools.builtins import builtin_tools
from g3chat.core.tools.confine import Roots
from g3chat.core.tools.grammar import call_grammar, validate_arguments
from g3chat.core.tools.loop import ToolLoop
from g3chat.core.tools.model import Tool, object_schema
from g3chat.core.tools.protocol import parse_calls
from g3chat.core.types import GenerationParams, TextDelta, collect, user

PROMPTS = [
    "Which files here mention TODO?",
    "Please help me with my project.",
    "What should I do next?",
    "Fix the bug in main.py and tell me what changed.",
    "How big is this folder?",
]


def _call_text(name: str, arguments: dict[str, Any]) -> str:
    return "```tool_code\n" + json.dumps({"name": name, "parameters": arguments}) + "\n```"


def loop_overhead(calls: int, with_store: bool) -> dict[str, float]:
    """Seconds per call of loop machinery: (loop - plain turns) / calls, the tool doing nothing."""
    noop = Tool("noop", "Does nothing.", object_schema({"x": {"type": "integer"}}, ["x"]), lambda a: "ok")
    tools = [noop, *builtin_tools(Roots([Path.cwd()]))]
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "bench.db") if with_store else None
        conversation = store.create_conversation("bench").id if store else None
        engine = FakeEngine()
        engine.load()
        # Warm up: grammar conversion, jsonschema import, first thread.
        engine.enqueue([_call_text("noop", {"x": 1})], ["done"])
        list(ToolLoop(engine, [user("go")], GenerationParams(), tools))
        engine.enqueue(*[[_call_text("noop", {"x": i})] for i in range(calls)], ["done"])
        started = time.perf_counter()
        loop = ToolLoop(
            engine,
            [user("go")],
            GenerationParams(),
            tools,
            max_steps=calls + 1,
            store=store,
            conversation_id=conversation,
        )
        events = list(loop)
        with_tools = time.perf_counter() - started
        assert len(loop.trace) == calls and all(e.result.status == "ok" for e in loop.trace), loop.trace[:1]
        tool_s = sum(e.elapsed_s for e in loop.trace)
        # Baseline: the same number of engine turns, streamed through a plain Turn (saved alike).
        engine.enqueue(*[[_call_text("noop", {"x": i})] for i in range(calls + 1)])
        started = time.perf_counter()
        for _ in range(calls + 1):
            list(Turn(engine, [user("go")], GenerationParams(), store=store, conversation_id=conversation))
        plain = time.perf_counter() - started
        if store:
            store.close()
    del events
    parse = _per_call(lambda: parse_calls(_call_text("noop", {"x": 1}), ["noop"]), 2000)
    validate = _per_call(lambda: validate_arguments(noop.parameters, {"x": 1}), 2000)
    grammar = _per_call(
        lambda: call_grammar([(t.name, t.parameters) for t in tools], lazy=True, max_calls=4), 20
    )
    return {
        "overhead_ms": (with_tools - plain) / calls * 1000,
        "execute_ms": tool_s / calls * 1000,
        "parse_ms": parse * 1000,
        "validate_ms": validate * 1000,
        "grammar_build_ms": grammar * 1000,
    }


def _per_call(fn: Any, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n


def _decode_rate(engine: Any, params: GenerationParams, prompt: str) -> tuple[float, int]:
    engine.llama.reset()
    tokens, started, first = 0, 0.0, None
    for event in engine.stream_chat([user(prompt)], params):
        if isinstance(event, TextDelta):
            now = time.perf_counter()
            if first is None:
                first, started = now, now
            tokens += 1
    elapsed = time.perf_counter() - (started or time.perf_counter())
    return ((tokens - 1) / elapsed if tokens > 1 and elapsed > 0 else 0.0), tokens


def grammar_speed(model: Path, threads: int, tokens: int, repeats: int) -> dict[str, float]:
    """Median decode tokens/s per mode, interleaved so a busy machine slows all alike."""
    from g3chat.core.engine.llama import LlamaCppEngine

    engine = LlamaCppEngine(model, n_ctx=4096, n_threads=threads)
    engine.load()
    tools = builtin_tools(Roots([Path.cwd()]))
    forced = call_grammar([("write_file", next(t for t in tools if t.name == "write_file").parameters)])
    lazy = call_grammar([(t.name, t.parameters) for t in tools], lazy=True, max_calls=4)
    modes = {
        "no grammar": GenerationParams(max_tokens=tokens, seed=1),
        "lazy, waiting": GenerationParams(
            max_tokens=tokens, seed=1, grammar=lazy.text, grammar_triggers=lazy.triggers
        ),
        "forced call (g3chat sampler)": GenerationParams(max_tokens=tokens, seed=1, grammar=forced.text),
    }
    rates: dict[str, list[float]] = {name: [] for name in [*modes, "forced call (llama-cpp-python grammar)"]}
    prompt = "Write a long story about a lighthouse keeper."
    for _ in range(repeats):
        for name, params in modes.items():
            rates[name].append(_decode_rate(engine, params, prompt)[0])
        rates["forced call (llama-cpp-python grammar)"].append(
            _raw_grammar_rate(engine, forced.text, tokens, prompt)
        )
    engine.close()
    return {name: statistics.median(values) for name, values in rates.items()}


def _raw_grammar_rate(engine: Any, grammar: str, tokens: int, prompt: str) -> float:
    """The same forced grammar through Llama.generate's own (full-vocabulary) grammar sampler."""
    import llama_cpp
    from llama_cpp.llama_grammar import LlamaGrammar

    llm = engine.llama
    llm.reset()
    llm.set_seed(1)
    prompt_tokens = engine.tokenize_prompt([user(prompt)])
    generator = llm.generate(
        prompt_tokens, top_k=64, top_p=0.95, min_p=0.0, temp=1.0, grammar=LlamaGrammar(_grammar=grammar)
    )
    times: list[float] = []
    for token in generator:
        times.append(time.perf_counter())
        if len(times) >= tokens or llama_cpp.llama_vocab_is_eog(llm._model.vocab, token):
            break
    generator.close()
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0


def validity(model: Path, threads: int, prompts: int, seeds: int) -> tuple[int, int, int, list[str]]:
    """(cases, parsed, schema-valid, failures) for forced calls on the real model."""
    from g3chat.core.engine.llama import LlamaCppEngine

    engine = LlamaCppEngine(model, n_ctx=4096, n_threads=threads)
    engine.load()
    with tempfile.TemporaryDirectory() as folder:
        tools = builtin_tools(Roots([folder]))
        by_name = {t.name: t for t in tools}
        cases = parsed_ok = valid = 0
        failures: list[str] = []
        for seed in range(seeds):
            for prompt in PROMPTS[:prompts]:
                for choice in [t.name for t in tools] + ["required"]:
                    loop = ToolLoop(
                        engine, [user(prompt)], GenerationParams(seed=seed, max_tokens=512), tools
                    )
                    messages, params = loop.request(choice)
                    text = collect(engine.stream_chat(messages, params)).text
                    parsed = parse_calls(text, known=list(by_name))
                    cases += 1
                    if (
                        len(parsed.calls) == 1
                        and not parsed.errors
                        and choice in (parsed.calls[0].name, "required")
                    ):
                        parsed_ok += 1
                        call = parsed.calls[0]
                        if not validate_arguments(by_name[call.name].parameters, call.arguments):
                            valid += 1
                            continue
                    failures.append(f"{choice} / {prompt!r} / seed {seed}: {text[:200]!r}")
    engine.close()
    return cases, parsed_ok, valid, failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help=MODEL_HELP)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calls", type=int, default=200, help="calls for the overhead measurement")
    parser.add_argument("--tokens", type=int, default=48, help="tokens per decode-speed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=3, help=f"validity prompts (max {len(PROMPTS)})")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--skip-model", action="store_true", help="only the loop overhead")
    args = parser.parse_args()

    print("Tool round trip, per call, excluding the tool and the model (FakeEngine, no-op tool):")
    for label, store in (("no history", False), ("saved to SQLite", True)):
        r = loop_overhead(args.calls, store)
        print(
            f"  {label:16s} overhead {r['overhead_ms']:6.2f} ms  (of which the tool call wrapper "
            f"{r['execute_ms']:.2f} ms; parse {r['parse_ms']:.3f} ms, schema check "
            f"{r['validate_ms']:.3f} ms; grammar build {r['grammar_build_ms']:.1f} ms once per loop)"
        )
    if args.skip_model:
        return 0
    args.model = resolve_model(args.model)
    print(f"\nDecode tokens/s, {args.model.name}, {args.threads} threads, median of {args.repeats}:")
    rates = grammar_speed(args.model, args.threads, args.tokens, args.repeats)
    base = rates["no grammar"]
    for name, rate in rates.items():
        print(f"  {name:40s} {rate:7.1f} tok/s  ({rate / base:.2f}x of no grammar)")
    cases, parsed, valid, failures = validity(args.model, args.threads, args.prompts, args.seeds)
    print(
        f"\nForced-choice validity: {cases} calls (8 tools named + required, x {args.prompts} prompts x "
        f"{args.seeds} seeds): parsed {parsed}/{cases} = {100 * parsed / cases:.1f} %, schema-valid "
        f"{valid}/{cases} = {100 * valid / cases:.1f} %"
    )
    for failure in failures:
        print("  FAILED", failure)
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
