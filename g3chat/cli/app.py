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
    help="List, show, export and delete saved conversations.", no_args_is_help=True, rich_markup_mode=None
)
config_app = typer.Typer(
    help="Where the config file lives and what it says.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(chats_app, name="chats")
app.add_typer(config_app, name="config")


class ExportFormat(str, Enum):
    md = "md"
    json = "json"


VERBOSE = typer.Option(False, "--verbose", help="Show llama.cpp's logs and full tracebacks.")


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
    model: str | None = typer.Option(
        None, "--model", "-m", help="Chat UI: GGUF file (or configured model name)."
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
        None, help="The question. Piped stdin is the prompt when this is absent, else context appended to it."
    ),
    model: str | None = typer.Option(None, "--model", "-m", help="GGUF file (or configured model name)."),
    system: str | None = typer.Option(None, "--system", "-s", help="System prompt."),
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
    verbose: bool = VERBOSE,
) -> int:
    """Answer once, streaming to stdout."""
    from g3chat.cli.ask import AskOptions, run_ask

    return run_ask(
        AskOptions(
            prompt=prompt,
            model=model,
            system=system,
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


@config_app.command("path")
def config_path(
    all_paths: bool = typer.Option(
        False, "--all", help="Every location g3chat uses, not just the config file."
    ),
) -> None:
    """Print the config file's path."""
    from g3chat.cli import config_cmd

    config_cmd.show_path(all_paths)


@config_app.command("show")
def config_show(
    docs: bool = typer.Option(True, "--docs/--no-docs", help="Include each setting's description."),
) -> None:
    """Print the effective configuration (defaults, file and environment together) as TOML."""
    from g3chat.cli import config_cmd

    config_cmd.show_config(docs)
