"""``g3chat models``: list, fit, info, use and rm (pull lives in :mod:`g3chat.cli.pull`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from g3chat.config import write_setting
from g3chat.core.errors import InputError
from g3chat.core.models.catalog import Variant
from g3chat.core.models.manager import ModelManager
from g3chat.core.models.pick import MARGIN_FRACTION, MARGIN_MIN, Plan, Verdict
from g3chat.core.models.probe import Hardware, describe, gib
from g3chat.runtime import Runtime

MiB = 1 << 20


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _table(rows: list[list[str]], indent: str = "") -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        _out(indent + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())


def _size(variant: Variant) -> str:
    return ("~" if variant.size_is_estimate else "") + gib(variant.size)


def active_variant(runtime: Runtime, manager: ModelManager) -> str | None:
    """The variant the configuration names (by name or by its path in the cache), if any."""
    configured = runtime.settings.model
    if not configured:
        return None
    found = manager.catalog.find(configured)
    if found is not None:
        return found.name
    try:
        target = Path(configured).expanduser().resolve()
    except OSError:
        return None
    for item in manager.installed():
        if item.path.resolve() == target:
            return item.variant.name
    return None


def list_models(json_output: bool) -> None:
    runtime = Runtime.from_env()
    manager = runtime.model_manager()
    active = active_variant(runtime, manager)
    installed = {i.variant.name: i for i in manager.installed()}
    rows = [["", "VARIANT", "QUANT", "SIZE", "STATUS", "REPO"]]
    for variant in sorted(manager.catalog.variants, key=lambda v: (v.family, -v.quality)):
        item = installed.get(variant.name)
        partial = 0 if item else manager.partial_bytes(variant)
        status = "installed" if item else "available"
        if partial:
            status = f"partial {partial * 100 // variant.size}%"
        if item and item.projector is not None:
            status += " +mmproj"
        if json_output:
            record = {
                "name": variant.name,
                "quant": variant.quant,
                "size": variant.size,
                "size_is_estimate": variant.size_is_estimate,
                "repo": variant.repo,
                "file": variant.file,
                "installed": item is not None,
                "path": str(item.path) if item else None,
                "partial_bytes": partial,
                "active": variant.name == active,
            }
            _out(json.dumps(record))
            continue
        marker = "*" if variant.name == active else ""
        rows.append([marker, variant.name, variant.quant, _size(variant), status, variant.repo])
    if json_output:
        return
    _table(rows)
    _out()
    _out("* active (the configured default)   ~ size not yet confirmed by the Hub")
    _out(f"models live in the shared Hugging Face cache: {manager.hub.cache_dir}")
    if runtime.settings.model and active is None:
        _out(f"configured model: {runtime.settings.model}")


def _memory(plan: Plan) -> str:
    e = plan.estimate
    if plan.verdict in (Verdict.FULL_GPU, Verdict.PARTIAL_GPU):
        return f"{gib(e.host)} RAM + {gib(e.gpu)} GPU"
    return gib(e.host)


def _verdict(plan: Plan) -> str:
    if plan.verdict is Verdict.PARTIAL_GPU:
        if plan.n_gpu_layers >= plan.variant.facts.n_layer:
            return "partial GPU (all layers, output on CPU)"
        return f"partial GPU ({plan.n_gpu_layers}/{plan.variant.facts.n_layer} layers)"
    return plan.verdict.value


def fit(ctx: int | None, json_output: bool = False) -> None:
    runtime = Runtime.from_env()
    manager = runtime.model_manager()
    shape = runtime.engine_shape(ctx)
    hw = manager.hardware()
    choice = manager.choice(shape)
    if json_output:
        from g3chat.cli.models_json import fit_record

        _out(json.dumps(fit_record(choice, hw, shape)))
        return
    _out("This machine")
    for line in _hardware_lines(hw):
        _out(f"  {line}")
    fa = "on" if shape.flash_attn else "off"
    swa = "full-size" if shape.swa_full else "window-sized"
    _out(
        f"  context: {choice.requested_ctx:,} tokens, batch {shape.n_ubatch}, flash attention {fa}, "
        f"{swa} sliding-window cache (engine settings)"
    )
    _out()
    rows = [["", "VARIANT", "QUANT", "SIZE", "KV CACHE", "ESTIMATE", "VERDICT", ""]]
    best = choice.recommended
    for plan in choice.plans:
        star = "★" if best is not None and plan.variant == best.variant and not choice.shorter_ctx else ""
        rows.append(
            [
                star,
                plan.variant.name,
                plan.variant.quant,
                _size(plan.variant),
                gib(plan.estimate.kv_host + plan.estimate.kv_gpu),
                _memory(plan),
                _verdict(plan),
                "installed" if plan.installed else "",
            ]
        )
    _table(rows)
    _out()
    if best is not None:
        _out(f"★ recommended: {choice.explain(hw)}")
    else:
        _out(choice.explain(hw))
    _out(
        "estimate = weights + KV cache + compute buffers + runtime (+ projector); a variant fits when the "
        f"estimate plus a {MARGIN_FRACTION:.0%} margin (at least {MARGIN_MIN // MiB} MiB) fits the memory "
        "available. ~ marks sizes not yet confirmed by the Hub."
    )
    if any(p.variant.family != "e2b" for p in choice.plans):
        _out("E4B variants are a larger option: g3chat never picks them itself ('g3chat models use' does).")


def _hardware_lines(hw: Hardware) -> list[str]:
    lines = describe(hw)
    if hw.gpus and hw.gpu_offload:
        lines.append("this llama.cpp build can offload to the GPU")
    elif not hw.gpus:
        build = "can offload to a GPU" if hw.gpu_offload else "is CPU-only"
        lines.append(f"this llama.cpp build {build}")
    return lines


def info(target: str, ctx: int | None = None, json_output: bool = False) -> None:
    from g3chat.core.gguf_file import inspect_gguf
    from g3chat.core.models.arch import ArchFacts
    from g3chat.core.models.fit import Weights, estimate, kv_bytes

    runtime = Runtime.from_env()
    path = Path(target).expanduser()
    if not path.exists():
        manager = runtime.model_manager()
        variant = manager.catalog.find(target)
        found = manager.installed_path(variant) if variant is not None else None
        if found is None:
            hint = f" (model {variant.name} is not downloaded)" if variant is not None else ""
            raise InputError(f"{target}: no such file{hint}")
        path = found
    summary = inspect_gguf(path)
    facts = ArchFacts.from_gguf(summary)
    record: dict[str, object] = {
        "file": str(path),
        "size": summary.file_size,
        "name": summary.name,
        "architecture": summary.architecture,
        "quantization": summary.quantization,
        "context_length": summary.context_length,
        "chat_template": bool(summary.chat_template),
        "tensors": len(summary.tensors),
        "gguf_version": summary.version,
        "facts": None,
        "kv_bytes_per_1024": None,
        "shape": None,
        "estimate": None,
        "memory": None,
    }
    rows = [
        ["file", str(path)],
        ["size", f"{summary.file_size:,} bytes ({gib(summary.file_size)})"],
        ["name", str(summary.name or "")],
        ["architecture", str(summary.architecture or "unknown")],
        ["quantization", str(summary.quantization or "unknown")],
        ["context length", f"{summary.context_length:,}" if summary.context_length else "unknown"],
        ["chat template", "yes" if summary.chat_template else "no (g3chat uses the built-in Gemma format)"],
        ["tensors", f"{len(summary.tensors):,} (GGUF v{summary.version})"],
    ]
    if facts is not None:
        shape = runtime.engine_shape(ctx)
        from g3chat.core.models.probe import llama_capabilities

        weights = Weights.from_gguf(summary, llama_capabilities()[1])
        cpu = estimate(facts, weights, shape)
        kv_1k = kv_bytes(facts, type(shape)(1024, shape.n_ubatch, shape.flash_attn, True))
        if json_output:
            from g3chat.cli.models_json import facts_record, info_memory_record

            hw = runtime.model_manager().hardware()
            record.update(
                facts=facts_record(facts), kv_bytes_per_1024=kv_1k, **info_memory_record(cpu, hw, shape)
            )
        rows += [
            ["layers", f"{facts.n_layer} ({facts.n_layer_kv} own KV, {facts.swa_layers_kv} windowed)"],
            ["attention", f"{facts.n_head} heads, {facts.n_head_kv} KV heads, head size {facts.head_dim_k}"],
            ["sliding window", f"{facts.n_swa:,} tokens" if facts.n_swa else "none"],
            ["embedding / FFN", f"{facts.n_embd:,} / {facts.n_ff:,}"],
            ["vocabulary", f"{facts.n_vocab:,} tokens"],
            ["KV cache", f"{gib(kv_1k)} per 1,024 tokens (f16)"],
            ["memory (CPU)", f"{gib(cpu.host)} at {cpu.n_ctx:,} tokens (weights {gib(cpu.weights_host)}, "
             f"KV {gib(cpu.kv_host)}, compute {gib(cpu.compute_host)}, runtime {gib(cpu.runtime)})"],
        ]  # fmt: skip
    if json_output:
        _out(json.dumps(record))
        return
    _table(rows)


def use(target: str) -> None:
    from g3chat.core.gguf_file import inspect_gguf

    runtime = Runtime.from_env()
    manager = runtime.model_manager()
    variant = manager.catalog.find(target)
    if variant is not None:
        path = manager.installed_path(variant)
        if path is None:
            raise InputError(
                f"model {variant.name} is not downloaded: run 'g3chat models pull {variant.name}'"
            )
        manager.verify(variant, path)
        value = variant.name
    else:
        path = Path(target).expanduser()
        if not path.exists():
            known = ", ".join(v.name for v in manager.catalog.variants)
            raise InputError(f"{target}: no such file or model variant (variants: {known})")
        inspect_gguf(path)  # a one-line error for anything that is not a complete GGUF model
        value = str(path.resolve())
    write_setting(runtime.paths.config_file, "model", value)
    _out(f"default model: {value} (written to {runtime.paths.config_file})")
    if runtime.environ.get("G3CHAT_MODEL"):
        sys.stderr.write("g3chat: note: G3CHAT_MODEL is set and overrides the config file\n")


def remove(name: str, yes: bool) -> None:
    runtime = Runtime.from_env()
    manager = runtime.model_manager()
    variant = manager.catalog.get(name)
    path = manager.installed_path(variant)
    if path is None and not manager.partial_bytes(variant):
        raise InputError(f"model {variant.name} is not downloaded")
    if not yes and sys.stdin.isatty() and sys.stdout.isatty():
        answer = input(f"delete {variant.name} ({gib(variant.size)}) from the Hugging Face cache? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            sys.stderr.write("nothing deleted\n")
            return
    was_default = active_variant(runtime, manager) == variant.name
    freed = manager.remove(variant)
    _out(f"removed {variant.name} ({gib(freed)} freed)")
    if was_default:
        write_setting(runtime.paths.config_file, "model", None)
        _out("it was the default model: g3chat now picks the best installed one")
