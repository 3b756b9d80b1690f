"""What ``ask`` sends before any model is loaded: the message (``--editor``) and the role (``--role``).

Precedence for sampling, lowest first: the config file, the conversation's own settings (``ask -c``), the
role, then the flags. A role's system prompt stands in for ``--system`` when that is not given, so a new
conversation starts with it and a continued one switches to it (as ``--system`` does).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from g3chat.cli.ask_options import AskOptions
from g3chat.core.chat import with_overrides
from g3chat.core.errors import Interrupted
from g3chat.core.roles import ROLE_KEY, SAMPLING, TOOLS_KEY, LoadedRole, conversation_params
from g3chat.core.types import GenerationParams
from g3chat.paths import Paths

CANCELLED = "the message was empty; nothing was sent"


def chosen_role(opts: AskOptions, paths: Paths) -> LoadedRole | None:
    """The ``--role`` asked for; unknown or broken is a one-line error (exit 2) before anything runs."""
    if opts.role is None:
        return None
    from g3chat.core.roles import find_role, role_folders

    return find_role(opts.role, role_folders(paths))


def compose(opts: AskOptions, initial: str) -> str:
    """With ``--editor``: the text the user saved in their editor (``initial`` pre-filled); an empty
    file cancels (exit 130). Without it: ``initial``."""
    if not opts.editor:
        return initial
    from g3chat.core.editor import edit_text

    text = edit_text(initial)
    if not text.strip():
        raise Interrupted(CANCELLED)
    return text.rstrip()


def sampling(
    defaults: GenerationParams,
    opts: AskOptions,
    own: Mapping[str, Any] | None = None,
    role: LoadedRole | None = None,
) -> GenerationParams:
    """``defaults`` (the config) with the conversation's settings, the role's, then the flags."""
    params = with_overrides(defaults, own or {})
    if role is not None:
        params = with_overrides(params, role.sampling)
    flags = {name: getattr(opts, name) for name in SAMPLING if getattr(opts, name, None) is not None}
    return replace(params, **flags)


def with_role(opts: AskOptions, role: LoadedRole | None, own: Mapping[str, Any]) -> AskOptions:
    """``opts`` with the role's system prompt (unless ``--system``) and tools (unless ``--tools``).

    Tools are on when the role, or the conversation being continued, says ``tools = true``.
    """
    tools_on = role.role.tools if role is not None and role.role.tools is not None else own.get(TOOLS_KEY)
    return replace(
        opts,
        system=opts.system if opts.system is not None or role is None else role.role.system_prompt,
        tools=opts.tools if opts.tools is not None or tools_on is not True else "all",
    )


def switched_params(own: Mapping[str, Any], role: LoadedRole) -> dict[str, Any]:
    """A conversation's params after ``--role``: the old role's settings give way to the new one's."""
    kept = {k: v for k, v in own.items() if k not in (*SAMPLING, ROLE_KEY, TOOLS_KEY)}
    return {**kept, **conversation_params(role)}
