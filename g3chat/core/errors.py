"""Errors the user sees. Each carries the exit code the CLI returns and prints as one line."""

from __future__ import annotations


class G3ChatError(Exception):
    """An expected failure with a message fit to show the user as one line."""

    exit_code = 1


class Interrupted(G3ChatError):
    """Ctrl+C: the work stopped cleanly (what is kept, the message says). Exit code 130, as for SIGINT."""

    exit_code = 130


class InputError(G3ChatError):
    """Bad input from the user: a missing file, a bad flag value, a malformed config. Exit code 2."""

    exit_code = 2


class ConfigError(InputError):
    """The config file or a G3CHAT_* variable is malformed."""


class ModelFileError(InputError):
    """The model path does not lead to a usable GGUF file."""


class ContextOverflowError(InputError):
    """The prompt does not fit the context window."""


class EngineError(G3ChatError):
    """The engine failed while loading or generating. Exit code 1."""


class StoreError(G3ChatError):
    """The history database cannot be used."""


class NotFoundError(InputError):
    """A conversation or message id that does not exist."""


class MediaError(InputError):
    """An attachment that cannot be used: missing, a directory, corrupt, not media, too large."""


class MediaUnsupportedError(InputError):
    """The loaded model cannot take this kind of attachment (no projector, or no audio encoder)."""


class MicrophoneError(G3ChatError):
    """Recording failed: no PortAudio library, no input device, or the device reported an error."""


# ------------------------------------------------------------------ OpenAI-compatible servers (RemoteEngine)


class ServerURLError(InputError):
    """``--server`` or ``engine.base_url`` is not an http(s) URL."""


class ServerUnreachableError(EngineError):
    """Connection refused, host name not found, TLS failure: nothing reached the server."""


class ServerAuthError(InputError):
    """The server refused the API key (401/403)."""


class UnknownModelError(InputError):
    """The server has no model by the requested name."""


class ServerFailedError(EngineError):
    """The server answered with an error (5xx after retries, or a 4xx it explained)."""

    status: int | None = None


class ServerTimeoutError(EngineError):
    """The server stopped answering for longer than the read timeout."""
