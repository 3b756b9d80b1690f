"""``g3chat models pull`` and the start-up offer to pull a model when none is installed."""

from __future__ import annotations

import sys

from g3chat.cli.interrupt import ctrl_c_interrupts
from g3chat.cli.progress import is_terminal, reporter
from g3chat.config import write_setting
from g3chat.core.errors import InputError
from g3chat.core.models.catalog import Variant
from g3chat.core.models.download import find_projector
from g3chat.core.models.manager import ModelManager, PullResult
from g3chat.core.models.probe import gib
from g3chat.core.models.resolve import PullOffer, ResolvedModel
from g3chat.runtime import Runtime


def _say(text: str) -> None:
    sys.stderr.write(f"g3chat: {text}\n")
    sys.stderr.flush()


def _interactive() -> bool:
    return sys.stdin.isatty() and is_terminal(sys.stderr)


def _confirm(question: str) -> bool:
    try:
        answer = input(f"{question} [Y/n] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("", "y", "yes")


def pick_auto(runtime: Runtime, manager: ModelManager) -> Variant:
    choice = manager.choice(runtime.engine_shape())
    if choice.recommended is None:
        raise InputError(choice.explain(manager.hardware()))
    _say(f"auto: {choice.explain(manager.hardware())}")
    return choice.recommended.variant


def download_variant(manager: ModelManager, variant: Variant, *, projector: bool) -> PullResult:
    """Also the start-up pull of ``ask --yes``: Ctrl+C stops it (partial kept) however g3chat was started."""
    progress = reporter()
    try:
        with ctrl_c_interrupts():
            return manager.pull(variant, projector=projector, progress=progress)
    finally:
        progress.close()


def activate(runtime: Runtime, variant: Variant) -> None:
    write_setting(runtime.paths.config_file, "model", variant.name)
    _say(f"{variant.name} is now the default model ({runtime.paths.config_file})")
    if runtime.environ.get("G3CHAT_MODEL"):
        _say("note: G3CHAT_MODEL is set and overrides the config file")


def pull(name: str, mmproj: bool, yes: bool) -> None:
    runtime = Runtime.from_env()
    manager = runtime.model_manager()
    automatic = name.strip().lower() == "auto"
    variant = pick_auto(runtime, manager) if automatic else manager.catalog.get(name)
    existing = manager.installed_path(variant)
    if existing is None or mmproj:
        remote = manager.remote(variant)
        if existing is None:
            _say(
                f"{variant.name}: {remote.filename} from {variant.repo}, {gib(remote.size)} "
                f"→ {manager.hub.cache_dir}"
            )
            if not yes and _interactive() and not _confirm(f"download {gib(remote.size)}?"):
                raise InputError("nothing downloaded")
        if not mmproj:
            found = find_projector(manager.listing(variant.repo))
            if found is not None:
                size = gib(found.size)
                _say(f"the repo also has a vision projector ({found.filename}, {size}): add --mmproj")
    result = download_variant(manager, variant, projector=mmproj)
    where = "already in the Hugging Face cache" if result.reused else "downloaded"
    _say(f"{variant.name}: {where}, sha256 verified: {result.path}")
    if result.projector is not None:
        _say(f"vision projector: {result.projector}")
    if automatic or not runtime.settings.model:
        activate(runtime, variant)


def accept_offer(runtime: Runtime, offer: PullOffer, *, yes: bool) -> ResolvedModel:
    """No model is installed: ask (terminal), pull with --yes, else stop with one line naming the command."""
    command = "g3chat models pull auto"
    if not yes:
        if not _interactive():
            raise InputError(
                f"no Gemma 3n model is installed: run '{command}' (recommended: {offer.variant}, "
                f"{gib(offer.size)}), or pass --yes to download it now"
            )
        _say(f"no Gemma 3n model is installed. Recommended: {offer.reason}")
        if not _confirm(f"download {offer.variant} ({gib(offer.size)}) now?"):
            raise InputError(f"no model to run: run '{command}' or pass --model PATH")
    manager = runtime.model_manager()
    variant = manager.catalog.get(offer.variant)
    download_variant(manager, variant, projector=False)
    activate(runtime, variant)
    resolved = runtime.resolve_model(variant.name)
    assert isinstance(resolved, ResolvedModel)
    return resolved
