"""Which GGUF a bench script measures: a path, a shorthand for a Gemma 3n-shaped model, or the test model.

The shorthands name the random-weight models that ``bench/e2b_model.py`` builds into a cache folder
outside the repository (``~/.cache/g3chat-bench/models``, or ``$G3CHAT_BENCH_MODELS``): they have the
published files' tensor names, shapes and types, so speed and memory are E2B's (or E4B's), answers are not.

    python bench/decode.py --model e2b-q4
"""

from __future__ import annotations

import os
from pathlib import Path

MODELS_ENV = "G3CHAT_BENCH_MODELS"
SHAPES = ("E2B", "E4B")
QUANTS = ("Q4_K_M", "Q8_0")
SHORTHANDS = {
    f"{shape.lower()}-{quant[:2].lower()}": (shape, quant) for shape in SHAPES for quant in QUANTS
}  # e2b-q4, e2b-q8, e4b-q4, e4b-q8
MODEL_HELP = f"a GGUF path or one of {', '.join(SHORTHANDS)} (bench/e2b_model.py); default: the test model"


def models_dir(out: Path | str | None = None) -> Path:
    """The cache folder for the shaped models: ``out``, else ``$G3CHAT_BENCH_MODELS``, else ~/.cache/…"""
    if out:
        return Path(out).expanduser()
    env = os.environ.get(MODELS_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "g3chat-bench" / "models"


def shaped_file(shape: str, quant: str, out: Path | str | None = None) -> Path:
    return models_dir(out) / f"gemma-3n-{shape}-shaped-{quant}.gguf"


def resolve_model(arg: str | Path | None) -> Path:
    """A bench script's ``--model``: a path, a shorthand (``e2b-q4``...), or None for the test model.

    A shorthand whose file has not been built exits with a one-line message saying how to build it.
    """
    if arg is None or str(arg) == "":
        from g3chat.core.testmodel import ensure_test_model
        from g3chat.paths import Paths

        return ensure_test_model(Paths.from_env().models_dir())
    key = str(arg).lower()
    if key in SHORTHANDS:
        shape, quant = SHORTHANDS[key]
        path = shaped_file(shape, quant)
        if not path.is_file():
            flag = " --shape E4B" if shape == "E4B" else ""
            raise SystemExit(f"{path} is missing: build it with `python bench/e2b_model.py{flag}`")
        return path
    path = Path(arg).expanduser()
    if not path.is_file():
        raise SystemExit(f"{path}: no such model file (or use one of {', '.join(SHORTHANDS)})")
    return path
