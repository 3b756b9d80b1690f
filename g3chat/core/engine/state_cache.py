"""Saved KV states: continue a conversation without evaluating its history again.

After a turn the engine saves the KV cache of its sequence (llama.cpp's ``llama_state_seq_get_data``)
together with the exact tokens it holds. Before the next prompt is evaluated the engine asks this cache for
the saved state whose tokens are the longest prefix of the new prompt, and restores it when that beats what
the live KV cache already holds. Two tiers:

- memory: a few recent states, so switching chat A -> B -> A in the TUI does not re-evaluate A;
- disk: states of long conversations, so ``g3chat ask -c`` in a new process and the TUI after a restart
  start where the last turn ended.

A state is only ever offered for the same model file and the same context settings (the key), and only
when its token prefix matches exactly; every disk file carries a sha256 of its payload, and a file that is
corrupt, truncated or from other settings is ignored and removed. Both tiers evict least recently used
entries beyond their byte budgets.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"G3KV"
VERSION = 1
SUFFIX = ".g3kv"


def tokens_digest(tokens: Sequence[int]) -> str:
    return hashlib.sha256(struct.pack(f"<{len(tokens)}i", *tokens)).hexdigest()


@dataclass(frozen=True)
class SavedState:
    tokens: tuple[int, ...]
    payload: bytes


@dataclass(frozen=True)
class _DiskEntry:
    path: Path
    n_tokens: int
    digest: str
    size: int


class StateCache:
    """Two-tier (memory, disk) store of KV states keyed by settings and exact token prefix."""

    def __init__(
        self,
        key: str,
        directory: Path | None = None,
        *,
        memory_budget: int = 512 << 20,
        disk_budget: int = 2 << 30,
        min_disk_tokens: int = 256,
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

    def best(self, prompt: Sequence[int], at_least: int = 0) -> SavedState | None:
        """The saved state with the longest token prefix of ``prompt`` longer than ``at_least`` tokens."""
        found: SavedState | None = None
        best_len = at_least
        for digest, state in reversed(self._memory.items()):
            n = len(state.tokens)
            if best_len < n <= len(prompt) and tuple(prompt[:n]) == state.tokens:
                found, best_len = state, n
                self._memory.move_to_end(digest)
        for entry in sorted(self._disk_entries().values(), key=lambda e: -e.n_tokens):
            if entry.n_tokens <= best_len or entry.n_tokens > len(prompt):
                continue
            if tokens_digest(prompt[: entry.n_tokens]) != entry.digest:
                continue
            state = self._read(entry)
            if state is not None:
                found, best_len = state, entry.n_tokens
                break
        return found

    # ------------------------------------------------------------------------------------------ save

    def put(self, tokens: Sequence[int], payload: bytes, *, to_disk: bool = False) -> None:
        state = SavedState(tuple(tokens), payload)
        digest = tokens_digest(tokens)
        self._memory[digest] = state
        self._memory.move_to_end(digest)
        while len(self._memory) > 1 and self._memory_bytes() > self.memory_budget:
            self._memory.popitem(last=False)
        if to_disk and self.directory is not None and len(tokens) >= self.min_disk_tokens:
            self._write(state, digest)

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
                "tokens_sha256": digest,
                "payload_sha256": hashlib.sha256(state.payload).hexdigest(),
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
        entries[digest] = _DiskEntry(path, len(state.tokens), digest, path.stat().st_size)
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
                    self._disk[digest] = _DiskEntry(path, int(header["n_tokens"]), digest, size)
        return self._disk

    def _read(self, entry: _DiskEntry) -> SavedState | None:
        try:
            data = entry.path.read_bytes()
            version, header_len = struct.unpack_from("<II", data, 4)
            header = json.loads(data[12 : 12 + header_len])
            start = 12 + header_len
            n = int(header["n_tokens"])
            tokens = struct.unpack_from(f"<{n}i", data, start)
            payload = data[start + 4 * n :]
            valid = (
                data[:4] == MAGIC
                and version == VERSION
                and header.get("key") == self.key
                and len(payload) == header["payload_size"]
                and hashlib.sha256(payload).hexdigest() == header["payload_sha256"]
                and tokens_digest(tokens) == entry.digest
            )
        except (OSError, ValueError, KeyError, struct.error):
            valid = False
        if not valid:
            entry.path.unlink(missing_ok=True)
            self._disk_entries().pop(entry.digest, None)
            return None
        os.utime(entry.path)
        return SavedState(tuple(tokens), payload)

    def forget(self, tokens: Sequence[int]) -> None:
        """Drop a state that failed to restore (llama.cpp refused it)."""
        digest = tokens_digest(tokens)
        self._memory.pop(digest, None)
        entry = self._disk_entries().pop(digest, None)
        if entry is not None:
            entry.path.unlink(missing_ok=True)


def _read_header(path: Path) -> dict | None:
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
