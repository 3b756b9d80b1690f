"""The fit estimate against the peak memory real loads use: the offline test model, or any GGUF (--model).

Each configuration runs in a fresh process: import llama_cpp, note the RSS, load the model through g3chat's
own engine (so the context settings are exactly the ones g3chat uses), run a workload, generate 16 tokens,
and read the peak RSS (``VmHWM``). The peak minus the RSS before loading is compared with
``g3chat.core.models.fit.estimate`` (``host``: what RSS shows; the pick additionally adds its margin).

Two workloads (``--fill``):

- ``context`` fills the context with a prompt: every KV cell and the largest attention mask in use, the
  true worst case. At Gemma 3n E2B scale on a 2-core CPU prefill runs at about 50 tokens/s, so filling
  32,768 tokens takes over ten minutes per configuration.
- ``batch`` evaluates one full batch (``n_ubatch`` = 512 tokens) after loading. It reaches the worst case
  except for one part, whose size column ``+mask`` bounds:

  * The weights are resident from the load on: llama.cpp maps the file with ``MAP_POPULATE`` (every page
    read in and counted in RSS) and writes the repacked copies while loading. (llama.cpp reads tensors
    over 4 GiB lazily; no Gemma 3n E2B tensor is that large, its per-layer embeddings are 1.5-2 GiB.)
  * The KV cache is resident from the load on although no token has been written: llama_kv_cache's
    constructor clears its buffers (``ggml_backend_buffer_clear(buf, 0)``), which writes every page. The
    RSS right after loading grows with ``n_ctx`` by exactly the KV buffer size llama.cpp logs (column
    ``loaded``), so nothing needs to touch them (reading ``llama_state_seq_get_size`` would not: it
    serializes only used cells).
  * The compute buffer is allocated for the worst-case graph (whose largest part, logits for a whole batch
    of outputs, never runs here: only the last token's logits are computed), and its pages become resident
    only when a graph writes them. A full batch writes every per-token activation. What a full context's
    last batch can write beyond it is the attention masks' columns beyond the cells in use: each mask is
    ``n_kv x n_ubatch`` (f16 with flash attention), ``n_kv`` grows with the filled cells up to ``n_ctx``,
    and a full-size sliding-window cache has two masks (global and windowed): at most
    ``2 x 2 x n_ubatch x (n_ctx - 512)`` bytes more (column ``+mask``: 7 MiB at 4K tokens, 63 MiB at 32K).
    In practice it is less, as the masks land partly on pages activations already touched: filling the
    context added nothing at 4K and 5.4 MiB at 8K to the E2B-shaped Q4_K_M's peak after a batch (bounds 7
    and 15 MiB), 4.0 and 8.9 MiB on the test model. ``--fill batch`` needs flash attention: without it the
    attention scores also grow with the filled context.

``error`` is the estimate's against the peak; ``bound`` against the peak plus ``+mask`` (``batch`` only),
the most a full context could add.

    python bench/fit_estimate.py [--threads 2]                   # the test model, five configurations
    python bench/fit_estimate.py --model e2b-q4 --ctx 4096,8192,32768 --fill batch  # bench/e2b_model.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from _models import MODEL_HELP, resolve_model

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from g3chat.core.gguf_file import inspect_gguf  # noqa: E402
from g3chat.core.models.arch import ArchFacts  # noqa: E402
from g3chat.core.models.fit import EngineShape, Weights, estimate, kv_cells  # noqa: E402
from g3chat.core.models.probe import llama_capabilities  # noqa: E402

MiB = 1 << 20
N_UBATCH = 512  # g3chat's engine.n_batch default (the engine sets n_ubatch = n_batch)
CONFIGS = [  # (n_ctx, flash_attn, swa_full)
    (2048, True, True),
    (8192, True, True),  # g3chat's defaults
    (16384, True, True),
    (8192, True, False),
    (4096, False, True),
]

MEASURE = r"""
import json, random, re, sys
import psutil
import llama_cpp
from g3chat.core.engine.native_log import native_log
from g3chat.core.engine.llama import LlamaCppEngine
path, n_ctx, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[5])
fa, swa, fill = sys.argv[3] == "1", sys.argv[4] == "1", sys.argv[6]
lines = []
log = native_log._on_log
native_log._on_log = lambda level, text: (lines.append(text.decode("utf-8", "replace")), log(level, text))
def peak():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))
proc = psutil.Process()
before = proc.memory_info().rss
engine = LlamaCppEngine(path, n_ctx=n_ctx, n_threads=threads, flash_attn=fa, swa_full=swa)
engine.load()
loaded = proc.memory_info().rss
llm = engine.llama
random.seed(1)
tokens = [random.randrange(1000, 200000) for _ in range(n_ctx - 64 if fill == "context" else 512)]
llm.eval(tokens)
for i, _ in enumerate(llm.generate(tokens, temp=0.0)):
    if i >= 15:
        break
after = proc.memory_info().rss
text = "".join(lines)
def mib(pattern):
    return sum(float(m) for m in re.findall(pattern + r" buffer size =\s+([\d.]+) MiB", text))
print(json.dumps({
    "loaded": loaded - before, "after": after - before, "peak": peak() - before,
    "log_mib": {"mapped": mib("CPU_Mapped model"), "repack": mib("CPU_REPACK model"), "kv": mib("KV"),
                "compute": mib("CPU compute"), "output": mib(r"CPU\s+output")},
}))
"""


def mask_gap(facts: ArchFacts, shape: EngineShape, filled: int) -> int:
    """Attention-mask bytes a full context's last batch writes beyond a batch at ``filled`` cells."""
    full, swa = kv_cells(facts, shape)
    n_kv = max(256, -(-filled // 256) * 256)  # llama_kv_cache::get_n_kv pads the cells in use to 256
    masks = [full] + ([swa] if facts.n_swa else [])
    return sum(2 * shape.n_ubatch * max(0, cells - n_kv) for cells in masks)


def measure(model: Path, n_ctx: int, fa: bool, swa: bool, threads: int, fill: str) -> dict[str, object]:
    argv = [str(model), str(n_ctx), str(int(fa)), str(int(swa)), str(threads), fill]
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=3600,
    )
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default=None, help=MODEL_HELP)
    parser.add_argument(
        "--configs",
        default=None,
        help="n_ctx:flash:swa_full,... (default: the five in CONFIGS), e.g. 4096:0:1",
    )
    parser.add_argument(
        "--ctx", default=None, help="n_ctx,... with g3chat's defaults (flash attention, full-size SWA cache)"
    )
    parser.add_argument(
        "--fill", choices=("context", "batch"), default="context", help="the workload (see above)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this file")
    args = parser.parse_args()
    configs = CONFIGS
    if args.configs:
        configs = [tuple(int(x) for x in c.split(":")) for c in args.configs.split(",")]  # type: ignore[misc]
    if args.ctx:
        configs = [(int(n), True, True) for n in args.ctx.split(",")]
    if args.fill == "batch" and not all(fa for _, fa, _ in configs):
        raise SystemExit("--fill batch needs flash attention: without it the scores grow with the context")
    args.model = resolve_model(args.model)
    summary = inspect_gguf(args.model)
    facts = ArchFacts.from_gguf(summary)
    assert facts is not None
    weights = Weights.from_gguf(summary, llama_capabilities()[1])
    print(f"model: {args.model.name} ({summary.file_size / MiB:,.0f} MiB), {args.threads} threads, "
          f"fill: {args.fill}")  # fmt: skip
    print(
        f"{'n_ctx':>6} {'flash':>5} {'swa_full':>8} {'estimate':>9} {'loaded':>9} {'peak':>9} {'error':>7} "
        f"{'+mask':>7} {'bound':>7}"
    )
    rows, errors = [], []
    for n_ctx, fa, swa in configs:
        shape = EngineShape(n_ctx, N_UBATCH, bool(fa), bool(swa))
        result = measure(args.model, n_ctx, bool(fa), bool(swa), args.threads, args.fill)
        peak = int(result["peak"])  # type: ignore[call-overload]
        gap = mask_gap(facts, shape, N_UBATCH) if args.fill == "batch" else 0
        e = estimate(facts, weights, shape)
        error, bound = (e.host - peak) / peak, (e.host - peak - gap) / (peak + gap)
        errors += [error, bound]
        config = {"n_ctx": n_ctx, "flash_attn": bool(fa), "swa_full": bool(swa), "fill": args.fill}
        rows.append({**config, "estimate": e.host, "error": error, "mask_gap": gap, "bound": bound, **result})
        print(
            f"{n_ctx:>6} {'on' if fa else 'off':>5} {'on' if swa else 'off':>8} {e.host / MiB:>8.1f}M "
            f"{int(result['loaded']) / MiB:>8.1f}M {peak / MiB:>8.1f}M {error:>+7.1%} "  # type: ignore[call-overload]
            f"{gap / MiB:>6.1f}M {bound:>+7.1%}",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps({"model": str(args.model), "rows": rows}, indent=1))
    print(f"errors: {min(errors):+.1%} .. {max(errors):+.1%} (target: -3 % .. +10 %)")


if __name__ == "__main__":
    main()
