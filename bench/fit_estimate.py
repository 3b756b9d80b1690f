"""The fit estimate against the memory a real load uses, on the offline test model.

Each configuration runs in a fresh process: import llama_cpp, note the RSS, load the model through
g3chat's own engine (so the context settings are exactly the ones g3chat uses), fill the context with a
prompt (the worst case: every KV cell and the largest attention mask in use), generate 16 tokens, and note
the RSS again. The difference is compared with ``g3chat.core.models.fit.estimate`` (``host``: what RSS
shows; the pick additionally adds its margin).

    python bench/fit_estimate.py [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from _models import MODEL_HELP, resolve_model

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from g3chat.core.gguf_file import inspect_gguf  # noqa: E402
from g3chat.core.models.arch import ArchFacts  # noqa: E402
from g3chat.core.models.fit import EngineShape, Weights, estimate  # noqa: E402
from g3chat.core.models.probe import llama_capabilities  # noqa: E402

MiB = 1 << 20
CONFIGS = [  # (n_ctx, flash_attn, swa_full)
    (2048, True, True),
    (8192, True, True),  # g3chat's defaults
    (16384, True, True),
    (8192, True, False),
    (4096, False, True),
]

MEASURE = r"""
import json, random, sys
import psutil
import llama_cpp
from g3chat.core.engine.llama import LlamaCppEngine
path, n_ctx, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[5])
fa, swa = sys.argv[3] == "1", sys.argv[4] == "1"
proc = psutil.Process()
before = proc.memory_info().rss
engine = LlamaCppEngine(path, n_ctx=n_ctx, n_threads=threads, flash_attn=fa, swa_full=swa)
engine.load()
loaded = proc.memory_info().rss
llm = engine.llama
random.seed(1)
tokens = [random.randrange(1000, 200000) for _ in range(n_ctx - 64)]
llm.eval(tokens)
for i, _ in enumerate(llm.generate(tokens, temp=0.0)):
    if i >= 15:
        break
after = proc.memory_info().rss
print(json.dumps({"loaded": loaded - before, "used": after - before}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default=None, help=MODEL_HELP)
    parser.add_argument(
        "--configs",
        default=None,
        help="n_ctx:flash:swa_full,... (default: the five in CONFIGS), e.g. 4096:0:1",
    )
    args = parser.parse_args()
    configs = CONFIGS
    if args.configs:
        configs = [tuple(int(x) for x in c.split(":")) for c in args.configs.split(",")]  # type: ignore[misc]
    args.model = resolve_model(args.model)
    summary = inspect_gguf(args.model)
    facts = ArchFacts.from_gguf(summary)
    assert facts is not None
    weights = Weights.from_gguf(summary, llama_capabilities()[1])
    print(f"model: {args.model.name} ({summary.file_size / MiB:,.0f} MiB), {args.threads} threads")
    print(f"{'n_ctx':>6} {'flash':>5} {'swa_full':>8} {'estimate':>9} {'measured':>9} {'error':>7}")
    errors = []
    for n_ctx, fa, swa in configs:
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                MEASURE,
                str(args.model),
                str(n_ctx),
                str(int(fa)),
                str(int(swa)),
                str(args.threads),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={"PYTHONPATH": str(ROOT), **__import__("os").environ},
            timeout=900,
        )
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-2000:])
        measured = json.loads(proc.stdout.strip().splitlines()[-1])["used"]
        e = estimate(facts, weights, EngineShape(n_ctx, 512, bool(fa), bool(swa)))
        error = (e.host - measured) / measured
        errors.append(abs(error))
        print(
            f"{n_ctx:>6} {'on' if fa else 'off':>5} {'on' if swa else 'off':>8} {e.host / MiB:>8.1f}M "
            f"{measured / MiB:>8.1f}M {error:>+7.1%}"
        )
    print(f"largest error: {max(errors):.1%} (target: within 10 %)")


if __name__ == "__main__":
    main()
