"""Typer command definitions. Each command's body lives in its own module, imported when it runs."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

app = typer.Typer(
    name="g3chat",
    help="Chat with Gemma 3n E2B locally, in the terminal.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: Rich help formatting costs ~180 ms of start-up
    context_settings={"help_option_names": ["-h", "--help"]},
)
chats_app = typer.Typer(
    help="List, show, export, import and delete saved conversations.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
config_app = typer.Typer(
    help="Where the config file lives and what it says.", no_args_is_help=True, rich_markup_mode=None
)
tools_app = typer.Typer(
    help="The tools the model can call: built-in, user and MCP.", no_args_is_help=True, rich_markup_mode=None
)
models_app = typer.Typer(
    help="Download Gemma 3n variants, see which fits this machine, choose the default.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(chats_app, name="chats")
app.add_typer(config_app, name="config")
app.add_typer(models_app, name="models")
app.add_typer(tools_app, name="tools")
roles_app = typer.Typer(
    help="Roles: named presets of a system prompt, sampling settings and tools (ask --role).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(roles_app, name="roles")


class ExportFormat(str, Enum):
    md = "md"
    json = "json"


VERBOSE = typer.Option(False, "--verbose", help="Show llama.cpp's logs and full tracebacks.")


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
    model: str | None = typer.Option(
        None, "--model", "-m", help="Chat UI: GGUF file (or configured model name); with --server, its model."
    ),
    server: str | None = typer.Option(
        None, "--server", metavar="URL", help="Chat UI: use an OpenAI-compatible server instead of llama.cpp."
    ),
    ctx_size: int | None = typer.Option(
        None, "--ctx", min=0, help="Chat UI: context window in tokens (0: model maximum)."
    ),
    threads: int | None = typer.Option(None, "--threads", "-t", min=1, help="Chat UI: CPU threads."),
    chat: int | None = typer.Option(None, "--chat", min=1, help="Chat UI: open conversation ID."),
    continue_: bool = typer.Option(
        False, "--continue", "-c", help="Chat UI: open the most recent conversation."
    ),
    verbose: bool = VERBOSE,
) -> int | None:
    """Chat with Gemma 3n E2B locally, in the terminal. With no command, open the chat UI."""
    if version:
        from g3chat import __version__

        typer.echo(f"g3chat {__version__}")
        raise typer.Exit(0)
    if ctx.invoked_subcommand is None:
        from g3chat.cli.tui_cmd import TuiOptions, run_tui

        return run_tui(
            TuiOptions(
                model=model,
                server=server,
                ctx=ctx_size,
                threads=threads,
                chat_id=chat,
                continue_last=continue_,
                verbose=verbose,
            )
        )
    return None


@app.command()
def ask(
    prompt: str | None = typer.Argument(
        None,
        help="The question; @path in it attaches that file (text, image, audio, video) from the working "
        "folder or tools.roots. Piped stdin is the prompt when this is absent, else context appended to it.",
    ),
    model: str | None = typer.Option(
        None, "--model", "-m", help="GGUF file (or configured model name); with --server, the server's model."
    ),
    server: str | None = typer.Option(
        None,
        "--server",
        metavar="URL",
        help="Use an OpenAI-compatible server (llama-server, vLLM, Ollama), e.g. http://127.0.0.1:8080/v1.",
    ),
    system: str | None = typer.Option(None, "--system", "-s", help="System prompt."),
    role: str | None = typer.Option(
        None,
        "--role",
        "-r",
        help="Use a role's system prompt and settings (see 'g3chat roles list'); flags override it.",
    ),
    editor: bool = typer.Option(
        False,
        "--editor",
        "-e",
        help="Write the message in $VISUAL/$EDITOR first (pre-filled with the prompt and piped stdin).",
    ),
    temperature: float | None = typer.Option(None, min=0.0, help="Sampling temperature (0: greedy)."),
    top_k: int | None = typer.Option(None, "--top-k", min=0, help="Top-k sampling (0 disables)."),
    top_p: float | None = typer.Option(None, "--top-p", min=0.0, max=1.0, help="Nucleus sampling."),
    min_p: float | None = typer.Option(None, "--min-p", min=0.0, max=1.0, help="Min-p sampling."),
    seed: int | None = typer.Option(None, min=0, help="Random seed for reproducible sampling."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", "-n", min=1, help="Most tokens to generate."),
    ctx: int | None = typer.Option(None, "--ctx", min=0, help="Context window in tokens (0: model maximum)."),
    threads: int | None = typer.Option(None, "--threads", "-t", min=1, help="CPU threads."),
    continue_: bool = typer.Option(False, "--continue", "-c", help="Continue the most recent conversation."),
    chat: int | None = typer.Option(None, "--chat", min=1, help="Continue conversation ID."),
    no_save: bool = typer.Option(False, "--no-save", help="Do not save this exchange in the history."),
    json_output: bool = typer.Option(
        False, "--json", help="Print one JSON object instead of streaming text."
    ),
    plain: bool = typer.Option(False, "--plain", help="Plain text even on a terminal (no Markdown)."),
    yes: bool = typer.Option(
        False,
        "--yes",
        "-y",
        help="Answer yes to every question: download the recommended model when none is installed, "
        "and run tools that change things without asking.",
    ),
    tools: str | None = typer.Option(
        None, "--tools", help="Let the model call tools: all, or NAME,NAME (see 'g3chat tools list')."
    ),
    tool_choice: str = typer.Option(
        "auto", "--tool-choice", help="auto, none, required (must call a tool first) or a tool's name."
    ),
    allow: str | None = typer.Option(
        None, "--allow", help="Run these tools (NAME,NAME) without asking, even when not on a terminal."
    ),
    max_steps: int | None = typer.Option(
        None, "--max-steps", min=1, max=100, help="Most rounds of tool calls (default: tools.max_steps)."
    ),
    image: list[str] = typer.Option(
        [], "--image", "-i", help="Attach an image (PNG, JPEG, WebP, GIF, BMP, TIFF); repeatable."
    ),
    audio: list[str] = typer.Option(
        [], "--audio", help="Attach an audio file (WAV, FLAC, MP3, OGG); repeatable."
    ),
    video: list[str] = typer.Option([], "--video", help="Attach frames of a video (1 per second, capped)."),
    mic: bool = typer.Option(False, "--mic", help="Record from the microphone and attach the recording."),
    seconds: float | None = typer.Option(
        None,
        "--seconds",
        min=0.5,
        help="With --mic: record at most this long (default 30; stops on silence).",
    ),
    mmproj: str | None = typer.Option(
        None, "--mmproj", help="Projector GGUF (mmproj) for images/audio; default: found beside the model."
    ),
    verbose: bool = VERBOSE,
) -> int:
    """Answer once, streaming to stdout."""
    from g3chat.cli.ask import AskOptions, run_ask

    return run_ask(
        AskOptions(
            prompt=prompt,
            model=model,
            server=server,
            system=system,
            role=role,
            editor=editor,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            min_p=min_p,
            seed=seed,
            max_tokens=max_tokens,
            ctx=ctx,
            threads=threads,
            continue_last=continue_,
            chat_id=chat,
            save=not no_save,
            json_output=json_output,
            plain=plain,
            verbose=verbose,
            tools=tools,
            tool_choice=tool_choice,
            yes=yes,
            images=list(image),
            audio=list(audio),
            videos=list(video),
            mic=mic,
            seconds=seconds,
            mmproj=mmproj,
            allow=allow,
            max_steps=max_steps,
        )
    )


@chats_app.command("list")
def chats_list(
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="Show at most this many."),
    json_output: bool = typer.Option(False, "--json", help="JSON lines instead of a table."),
) -> None:
    """List conversations, most recent first."""
    from g3chat.cli import chats

    chats.list_chats(limit, json_output)


@chats_app.command("show")
def chats_show(
    chat_id: int = typer.Argument(..., min=1, help="Conversation id."),
    plain: bool = typer.Option(False, "--plain", help="Plain text even on a terminal."),
) -> None:
    """Print a conversation."""
    from g3chat.cli import chats

    chats.show_chat(chat_id, plain)


@chats_app.command("export")
def chats_export(
    chat_id: int = typer.Argument(..., min=1, help="Conversation id."),
    fmt: ExportFormat = typer.Option(ExportFormat.md, "--format", "-f", help="md or json."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
) -> None:
    """Export a conversation as Markdown or JSON."""
    from g3chat.cli import chats

    chats.export_chat(chat_id, fmt.value, output)


@chats_app.command("rm")
def chats_rm(
    chat_ids: list[int] = typer.Argument(..., min=1, help="Conversation id(s)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete conversations."""
    from g3chat.cli import chats

    chats.remove_chats(chat_ids, yes)


@chats_app.command("import")
def chats_import(
    file: Path = typer.Argument(
        ..., help="ChatGPT's conversations.json (or export zip or folder), an llm logs.db, an oterm store.db."
    ),
    json_output: bool = typer.Option(False, "--json", help="One JSON object: what was imported."),
) -> None:
    """Import conversations from ChatGPT, llm or oterm (read from the file); importing again adds nothing."""
    from g3chat.cli import chats

    chats.import_chats(file, json_output)


@config_app.command("path")
def config_path(
    all_paths: bool = typer.Option(
        False, "--all", help="Every location g3chat uses, not just the config file."
    ),
    json_output: bool = typer.Option(False, "--json", help="Every location as one JSON object."),
) -> None:
    """Print the config file's path."""
    from g3chat.cli import config_cmd

    config_cmd.show_path(all_paths, json_output=json_output)


@config_app.command("show")
def config_show(
    docs: bool = typer.Option(True, "--docs/--no-docs", help="Include each setting's description."),
) -> None:
    """Print the effective configuration (defaults, file and environment together) as TOML."""
    from g3chat.cli import config_cmd

    config_cmd.show_config(docs)


@tools_app.command("list")
def tools_list(
    json_output: bool = typer.Option(False, "--json", help="JSON lines (with each tool's schema)."),
    mcp: bool = typer.Option(
        True, "--mcp/--no-mcp", help="Start the MCP servers in mcp.json to list theirs."
    ),
) -> None:
    """List every tool: built-in, user tools folder, entry points and MCP servers."""
    from g3chat.cli import tools_cmd

    tools_cmd.list_tools(json_output, mcp)


@roles_app.command("list")
def roles_list(
    json_output: bool = typer.Option(False, "--json", help="JSON lines (with each role's system prompt)."),
) -> None:
    """List the roles: shipped ones and yours (in the roles/ folder of the config directory)."""
    from g3chat.cli import roles_cmd

    roles_cmd.list_roles(json_output)


@roles_app.command("show")
def roles_show(
    name: str = typer.Argument(..., help="The role's name (see 'g3chat roles list')."),
    json_output: bool = typer.Option(False, "--json", help="One JSON object."),
) -> None:
    """Print a role: where it comes from, its settings and its system prompt."""
    from g3chat.cli import roles_cmd

    roles_cmd.show_role(name, json_output)


@app.command()
def serve(
    model: str | None = typer.Option(
        None, "--model", "-m", help="GGUF file (default: the configured model)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback by default)."),
    port: int = typer.Option(8080, "--port", "-p", min=1, max=65535, help="Port to listen on."),
    ctx: int | None = typer.Option(None, "--ctx", min=0, help="Context window in tokens (0: model maximum)."),
    threads: int | None = typer.Option(None, "--threads", "-t", min=1, help="CPU threads."),
    api_key_env: str | None = typer.Option(
        None, "--api-key-env", metavar="NAME", help="Require the API key held in this environment variable."
    ),
    mmproj: str | None = typer.Option(
        None, "--mmproj", metavar="PATH", help="The model's projector GGUF, for images (and audio)."
    ),
    allow_fetch: bool = typer.Option(
        False, "--allow-fetch", help="Let image_url parts fetch http(s) URLs (default: data: URLs and files)."
    ),
    verbose: bool = VERBOSE,
) -> int:
    """Serve the local model as an OpenAI-compatible endpoint (http://127.0.0.1:8080/v1) for other tools."""
    from g3chat.cli.serve import ServeOptions, run_serve

    return run_serve(
        ServeOptions(
            model=model,
            host=host,
            port=port,
            ctx=ctx,
            threads=threads,
            api_key_env=api_key_env,
            mmproj=mmproj,
            allow_fetch=allow_fetch,
            verbose=verbose,
        )
    )


@models_app.command("list")
def models_list(
    server: str | None = typer.Option(
        None, "--server", metavar="URL", help="List an OpenAI-compatible server's models instead."
    ),
    json_output: bool = typer.Option(False, "--json", help="JSON lines instead of a table."),
) -> None:
    """Variants installed and available: sizes, status, the active one (or a server's models)."""
    if server:
        from g3chat.cli import remote_models

        remote_models.list_server_models(server, json_output)
        return
    from g3chat.cli import models

    models.list_models(json_output)


@models_app.command("pull")
def models_pull(
    variant: str = typer.Argument("auto", help="A variant (see 'models list'), or auto for the best fit."),
    mmproj: bool = typer.Option(False, "--mmproj", help="Also download the repo's vision projector."),
    audio: bool = typer.Option(
        False,
        "--audio",
        help="Instead, fetch Gemma 3n's audio encoder weights for VARIANT's size (gated repo: set HF_TOKEN).",
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Download a variant into the Hugging Face cache, verified (resumes an interrupted download)."""
    from g3chat.cli.interrupt import ctrl_c_interrupts

    with ctrl_c_interrupts():
        if audio:
            from g3chat.cli.pull_audio import pull_audio

            pull_audio(variant)
            return
        from g3chat.cli import pull

        pull.pull(variant, mmproj, yes)


@models_app.command("rm")
def models_rm(
    variant: str = typer.Argument(..., help="The variant to delete."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a downloaded variant (or its interrupted download)."""
    from g3chat.cli import models

    models.remove(variant, yes)


@models_app.command("use")
def models_use(target: str = typer.Argument(..., help="A downloaded variant name, or a GGUF path.")) -> None:
    """Make a model the default (writes 'model' in the config file, keeping your comments)."""
    from g3chat.cli import models

    models.use(target)


@models_app.command("fit")
def models_fit(
    ctx: int | None = typer.Option(None, "--ctx", min=0, help="Context to plan for (0: model maximum)."),
    json_output: bool = typer.Option(False, "--json", help="One JSON object (sizes in bytes)."),
) -> None:
    """Which variants fit this machine's memory, and which g3chat recommends."""
    from g3chat.cli import models

    models.fit(ctx, json_output)


@models_app.command("info")
def models_info(
    target: str = typer.Argument(..., help="A GGUF file (or a downloaded variant name)."),
    ctx: int | None = typer.Option(
        None, "--ctx", min=0, help="Context to estimate memory for (0: model maximum)."
    ),
    json_output: bool = typer.Option(False, "--json", help="One JSON object (sizes in bytes)."),
) -> None:
    """A GGUF file's metadata: architecture, quantization, context, chat template, size, memory."""
    from g3chat.cli import models

    models.info(target, ctx, json_output)
