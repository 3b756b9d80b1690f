"""Ctrl+C during a download always interrupts it, however g3chat was started.

A process started as a background job of a script or a CI runner (``cmd &`` without job control) inherits
SIGINT *ignored*, and Python then installs no handler of its own: a Ctrl+C at the terminal (which reaches
the whole foreground process group, the script and its background jobs alike) or a ``kill -INT`` did
nothing, and ``models pull`` ran to the end and exited 0 while the script around it had stopped. Inside
:func:`ctrl_c_interrupts` SIGINT raises KeyboardInterrupt whatever it was before (``ask`` installs its own
handler for the same reason), and a KeyboardInterrupt the core has not already turned into a message
leaves as one line with exit code 130 (Typer would exit 130 without a word).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from g3chat.core.errors import Interrupted


@contextmanager
def ctrl_c_interrupts() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # only the main thread gets signals
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted("interrupted") from None
    finally:
        if previous is not None:  # None: a handler installed from C, which cannot be put back
            signal.signal(signal.SIGINT, previous)
