"""``g3chat models pull --audio``: Gemma 3n's audio encoder weights, fetched from the original checkpoint.

GGUF conversions of Gemma 3n carry its text model (and, in the mmproj, usually the vision tower); the audio
tower that g3chat runs itself comes from ``google/gemma-3n-E2B-it`` (or E4B's), which is gated: accept the
license on huggingface.co and set ``HF_TOKEN``. Only the audio tensors are read, by HTTP range requests,
then checked and installed atomically under the models folder (see :mod:`g3chat.core.audio.install`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from g3chat.core.audio.install import AUDIO_REPOS, installed_path, pull_audio_weights, verify_safetensors
from g3chat.core.errors import InputError
from g3chat.core.models.probe import gib
from g3chat.runtime import Runtime


def _say(text: str) -> None:
    sys.stderr.write(f"g3chat: {text}\n")
    sys.stderr.flush()


def audio_repo(runtime: Runtime, name: str) -> str:
    """The checkpoint whose audio tower fits ``name`` (a variant or e2b/e4b; auto: the configured model, a
    variant or a GGUF file whose header says its size, else E2B)."""
    key = name.strip().lower()
    if key in AUDIO_REPOS:
        return AUDIO_REPOS[key]
    catalog = runtime.model_manager().catalog
    if key in ("", "auto"):
        configured = runtime.settings.model.strip()
        variant = catalog.find(configured) if configured else None
        size = _file_size(Path(configured).expanduser()) if configured and variant is None else None
        if size in AUDIO_REPOS:
            return AUDIO_REPOS[size]
    else:
        variant = catalog.get(name)
    family = variant.family if variant is not None else "e2b"
    if family not in AUDIO_REPOS:
        raise InputError(f"no Gemma 3n audio weights are known for {family} models")
    return AUDIO_REPOS[family]


def _file_size(path: Path) -> str | None:
    """E2B or E4B, as a configured GGUF file's header says (None: not a file, or it does not say)."""
    from g3chat.core.audio.provenance import model_size
    from g3chat.core.gguf_file import inspect_gguf

    if not path.is_file():
        return None
    try:
        return model_size(inspect_gguf(path, check_data=False).metadata)
    except InputError:
        return None


def pull_audio(name: str) -> None:
    from g3chat.cli.progress import reporter
    from g3chat.core.models.download import Progress

    runtime = Runtime.from_env()
    repo = audio_repo(runtime, name)
    models = runtime.paths.models_dir()
    dest = installed_path(models, repo)
    if dest.is_file():
        verify_safetensors(dest)
        _say(f"Gemma 3n audio weights already installed and checked: {dest}")
        return
    _say(f"fetching the audio encoder of {repo} (only its audio tensors, by range reads) → {dest}")
    show = reporter()

    def progress(done: int, total: int) -> None:
        show(Progress(dest.name, "downloading", done, total))

    try:
        path = pull_audio_weights(
            models,
            repo,
            token=runtime.environ.get("HF_TOKEN") or None,
            endpoint=runtime.environ.get("HF_ENDPOINT") or None,
            progress=progress,
        )
    finally:
        show.close()
    _say(f"Gemma 3n audio weights installed, checked: {path} ({gib(path.stat().st_size)})")
