"""Saved KV states: continue a conversation without evaluating its history again.

After a turn the engine saves the KV cache of its sequence (llama.cpp's ``llama_state_seq_get_data``)
together with the exact tokens it holds. Before the next prompt is evaluated the engine asks this cache for
the saved state that shares the longest token prefix with the new prompt, and restores it when that beats
what the live KV cache already holds: a state that matches only up to some token is restored and cut back
to that token (a re-rendered history that tokenizes differently from what was generated, a new chat that
shares only the system prompt and tools with an old one), so only the tokens after it are evaluated. Two
tiers:

- memory: a few recent states, so switching chat A -> B -> A in the TUI does not re-evaluate A;
- disk: states of long conversations, so ``g3chat ask -c`` in a new process and the TUI after a restart
  start where the last turn ended.

A state is only ever offered for the same model file and the same context settings (the key), and only
for the tokens it shares with the prompt; every disk file carries a CRC-32 of its payload (a check against
corruption, three times faster than sha256 here: reading a state is on the path to the first token), and a
file that is corrupt, truncated or from other settings is ignored and removed. Both tiers evict least
recently used entries beyond their byte budgets.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import time
import zlib
from array import array
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

MAGIC = b"G3KV"
VERSION = 2  # 2: CRC-32 payload check (1 was sha256; such files are removed as from other settings)
SUFFIX = ".g3kv"


def tokens_digest(tokens: Sequence[int]) -> str:
    return hashlib.sha256(struct.pack(f"<{len(tokens)}i", *tokens)).hexdigest()


def as_array(tokens: Sequence[int]) -> np.ndarray:
    return np.asarray(tokens, dtype=np.int64)


def common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    differs = np.flatnonzero(a[:n] != b[:n])
    return int(differs[0]) if len(differs) else n


@dataclass(frozen=True)
class SavedState:
    tokens: tuple[int, ...]
    payload: bytes
    # The oldest position the state holds for every layer: a sliding-window cache may have reused the
    # cells of positions its window had passed, and then the state cannot be cut back before pos_min + the
    # window (see KVSession.prepare).
    pos_min: int = 0
    ids: np.ndarray = field(init=False, repr=False, compare=False)  # the tokens as an array

    def __post_init__(self) -> None:
        object.__setattr__(self, "ids", as_array(self.tokens))


@dataclass(frozen=True)
class StateMatch:
    """A saved state and how many of its leading tokens the prompt shares (``length``)."""

    state: SavedState
    length: int

    @property
    def tokens(self) -> tuple[int, ...]:
        return self.state.tokens

    @property
    def payload(self) -> bytes:
        return self.state.payload


@dataclass
class _DiskEntry:
    path: Path
    n_tokens: int
    digest: str
    size: int
    pos_min: int = 0
    tokens: np.ndarray | None = None  # read on the first lookup


@dataclass(frozen=True)
class Candidate:
    """A saved state sharing ``length`` leading tokens with a prompt; ``load`` reads it (None: corrupt)."""

    length: int
    n_tokens: int
    pos_min: int
    load: Callable[[], SavedState | None]


class StateCache:
    """Two-tier (memory, disk) store of KV states keyed by settings; found by shared token prefix."""

    def __init__(
        self,
        key: str,
        directory: Path | None = None,
        *,
        memory_budget: int = 512 << 20,
        disk_budget: int = 2 << 30,
        min_disk_tokens: int = 64,  # at Gemma 3n E2B scale on a CPU, 64 tokens take over a second to evaluate
    ) -> None:
        self.key = key
        self.key_digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        self.directory = directory
        self.memory_budget = memory_budget
        self.disk_budget = disk_budget
        self.min_disk_tokens = min_disk_tokens
        self._memory: OrderedDict[str, SavedState] = OrderedDict()
        self._disk: dict[str, _DiskEntry] | None = None  # scanned lazily

    # ---------------------------------------------------------------------------------------- lookup

    def candidates(self, prompt: Sequence[int], at_least: int = 0) -> list[Candidate]:
        """Saved states sharing more than ``at_least`` leading tokens with ``prompt``, best first: the
        longest shared prefix, then the shortest state (the least to copy back). Nothing is read from
        disk but token lists (once per file); a payload is read by the candidate's ``load``."""
        wanted = as_array(prompt)
        found: list[Candidate] = []
        for digest, state in self._memory.items():
            n = common_prefix(state.ids, wanted)
            if n > at_least:
                found.append(Candidate(n, len(state.tokens), state.pos_min, self._memory_loader(digest)))
        for digest, entry in list(self._disk_entries().items()):
            if digest in self._memory:
                continue
            tokens = self._disk_tokens(entry)
            n = common_prefix(tokens, wanted) if tokens is not None else 0
            if n > at_least:
                found.append(Candidate(n, entry.n_tokens, entry.pos_min, partial(self._read, entry)))
        found.sort(key=lambda c: (-c.length, c.n_tokens))
        return found

    def best(self, prompt: Sequence[int], at_least: int = 0) -> StateMatch | None:
        """The saved state sharing the longest token prefix with ``prompt``, if longer than ``at_least``;
        a disk state that turns out corrupt is removed and the next best tried."""
        for candidate in self.candidates(prompt, at_least):
            state = candidate.load()
            if state is not None:
                return StateMatch(state, candidate.length)
        return None

    def _memory_loader(self, digest: str) -> Callable[[], SavedState | None]:
        def load() -> SavedState | None:
            state = self._memory.get(digest)
            if state is not None:
                self._memory.move_to_end(digest)
            return state

        return load

    # ------------------------------------------------------------------------------------------ save

    def put(
        self,
        tokens: Sequence[int],
        payload: bytes,
        *,
        pos_min: int = 0,
        to_disk: bool = False,
        min_disk_tokens: int | None = None,
    ) -> None:
        """Keep a state in memory; also on disk when asked and at least ``min_disk_tokens`` long."""
        state = SavedState(tuple(tokens), payload, pos_min)
        digest = tokens_digest(tokens)
        self._memory[digest] = state
        self._memory.move_to_end(digest)
        while len(self._memory) > 1 and self._memory_bytes() > self.memory_budget:
            self._memory.popitem(last=False)
        floor = self.min_disk_tokens if min_disk_tokens is None else min_disk_tokens
        if to_disk and self.directory is not None and len(tokens) >= floor:
            self._write(state, digest)

    def holds(self, tokens: Sequence[int]) -> bool:
        """Whether exactly this token sequence is saved (in either tier)."""
        digest = tokens_digest(tokens)
        return digest in self._memory or digest in self._disk_entries()

    def _memory_bytes(self) -> int:
        return sum(len(s.payload) for s in self._memory.values())

    def _write(self, state: SavedState, digest: str) -> None:
        assert self.directory is not None
        entries = self._disk_entries()
        path = self.directory / f"{self.key_digest}-{digest[:32]}{SUFFIX}"
        if digest in entries:
            os.utime(entries[digest].path)
            return
        header = json.dumps(
            {
                "key": self.key,
                "n_tokens": len(state.tokens),
                "pos_min": state.pos_min,
                "tokens_sha256": digest,
                "payload_crc32": zlib.crc32(state.payload),
                "payload_size": len(state.payload),
            }
        ).encode()
        tokens = struct.pack(f"<{len(state.tokens)}i", *state.tokens)
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
        try:
            with tmp.open("wb") as fh:
                fh.write(MAGIC + struct.pack("<II", VERSION, len(header)) + header + tokens + state.payload)
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)
            return  # a cache that cannot be written is only a slower start next time
        entries[digest] = _DiskEntry(
            path, len(state.tokens), digest, path.stat().st_size, state.pos_min, state.ids.astype(np.int32)
        )
        self._evict_disk()

    def _evict_disk(self) -> None:
        entries = self._disk_entries()
        by_age = sorted(entries.items(), key=lambda item: _mtime(item[1].path))
        total = sum(e.size for e in entries.values())
        while total > self.disk_budget and len(by_age) > 1:
            digest, entry = by_age.pop(0)
            entry.path.unlink(missing_ok=True)
            entries.pop(digest, None)
            total -= entry.size

    # ------------------------------------------------------------------------------------------ disk

    def _disk_entries(self) -> dict[str, _DiskEntry]:
        if self._disk is None:
            self._disk = {}
            if self.directory is not None and self.directory.is_dir():
                for path in self.directory.glob(f"{self.key_digest}-*{SUFFIX}"):
                    header = _read_header(path)
                    if header is None or header.get("key") != self.key:
                        path.unlink(missing_ok=True)  # corrupt, or another model's file under our prefix
                        continue
                    digest = header["tokens_sha256"]
                    size = path.stat().st_size
                    self._disk[digest] = _DiskEntry(
                        path, int(header["n_tokens"]), digest, size, int(header.get("pos_min", 0))
                    )
        return self._disk

    def _disk_tokens(self, entry: _DiskEntry) -> np.ndarray | None:
        """The tokens a disk state holds (read once: 4 bytes a token, without the payload)."""
        if entry.tokens is None:
            try:
                with entry.path.open("rb") as fh:
                    head = fh.read(12)
                    _, header_len = struct.unpack_from("<II", head, 4)
                    fh.seek(12 + header_len)
                    raw = fh.read(4 * entry.n_tokens)
                if len(raw) != 4 * entry.n_tokens:
                    raise ValueError("truncated")
                entry.tokens = np.frombuffer(raw, dtype="<i4")
            except (OSError, ValueError, struct.error):
                entry.path.unlink(missing_ok=True)
                self._disk_entries().pop(entry.digest, None)
                return None
        return entry.tokens

    def _read(self, entry: _DiskEntry) -> SavedState | None:
        try:
            data = entry.path.read_bytes()
            version, header_len = struct.unpack_from("<II", data, 4)
            header = json.loads(data[12 : 12 + header_len])
            start = 12 + header_len
            n = int(header["n_tokens"])
            tokens = array("i")
            tokens.frombytes(data[start : start + 4 * n])
            payload = data[start + 4 * n :]
            valid = (
                data[:4] == MAGIC
                and version == VERSION
                and header.get("key") == self.key
                and len(tokens) == n
                and len(payload) == header["payload_size"]
                and zlib.crc32(payload) == header["payload_crc32"]
                and tokens_digest(tokens) == entry.digest
            )
        except (OSError, ValueError, KeyError, struct.error):
            valid = False
        if not valid:
            entry.path.unlink(missing_ok=True)
            self._disk_entries().pop(entry.digest, None)
            return None
        os.utime(entry.path)
        return SavedState(tuple(tokens), payload, int(header.get("pos_min", 0)))

    def forget(self, tokens: Sequence[int]) -> None:
        """Drop a state that failed to restore (llama.cpp refused it)."""
        digest = tokens_digest(tokens)
        self._memory.pop(digest, None)
        entry = self._disk_entries().pop(digest, None)
        if entry is not None:
            entry.path.unlink(missing_ok=True)


def _read_header(path: Path) -> dict[str, Any] | None:
    try:
        with path.open("rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] != MAGIC:
                return None
            version, header_len = struct.unpack_from("<II", head, 4)
            if version != VERSION or header_len > 1 << 20:
                return None
            return json.loads(fh.read(header_len))
    except (OSError, ValueError):
        return None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()
