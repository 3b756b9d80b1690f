"""The shared Hugging Face cache, as g3chat uses it, and sha256 verification of what is in it.

g3chat keeps downloaded models in the standard Hub cache layout (``HF_HUB_CACHE``, else ``$HF_HOME/hub``,
else ``~/.cache/huggingface/hub``)::

    models--unsloth--gemma-3n-E2B-it-GGUF/
        blobs/<sha256>                 the file, named by its LFS sha256
        blobs/<sha256>.incomplete      a partial download, resumed by the next pull
        snapshots/<commit>/<filename>  -> ../../blobs/<sha256>
        refs/main                      <commit>

so a file another tool fetched is reused, and what g3chat fetched serves other tools. A file is verified
against its sha256 before its first use; the result is remembered (path, size, mtime) so later starts skip
hashing gigabytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from g3chat.core.errors import G3ChatError

SHA256 = re.compile(r"^[0-9a-f]{64}$")
DEFAULT_ENDPOINT = "https://huggingface.co"


class IntegrityError(G3ChatError):
    """A model file does not match its published sha256."""


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class HubConfig:
    """Where the Hub is and how to reach it, read from the environment each time (not at import)."""

    endpoint: str
    token: str | None
    offline: bool
    cache_dir: Path
    timeout: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HubConfig:
        env = os.environ if environ is None else environ
        home = env.get("HF_HOME") or os.path.join(
            env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface"
        )
        cache = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE") or os.path.join(home, "hub")
        return cls(
            endpoint=(env.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/"),
            token=env.get("HF_TOKEN") or None,
            offline=_truthy(env.get("HF_HUB_OFFLINE")) or _truthy(env.get("TRANSFORMERS_OFFLINE")),
            cache_dir=Path(os.path.expandvars(os.path.expanduser(cache))),
        )


@dataclass(frozen=True)
class RepoCache:
    """One repository's folder in the cache."""

    root: Path

    @classmethod
    def of(cls, cache_dir: Path, repo: str) -> RepoCache:
        return cls(cache_dir / ("models--" + repo.replace("/", "--")))

    def blob(self, sha256: str) -> Path:
        return self.root / "blobs" / sha256

    def partial(self, sha256: str) -> Path:
        return self.root / "blobs" / f"{sha256}.incomplete"

    def pointer(self, commit: str, filename: str) -> Path:
        return self.root / "snapshots" / commit / filename

    def find(self, filename: str) -> Path | None:
        """The cached file: at refs/main's commit if there, else in the newest snapshot holding it."""
        ref = self.root / "refs" / "main"
        try:
            commit = ref.read_text().strip()
        except OSError:
            commit = ""
        if commit and self.pointer(commit, filename).is_file():
            return self.pointer(commit, filename)
        snapshots = self.root / "snapshots"
        try:
            found = [p / filename for p in snapshots.iterdir() if (p / filename).is_file()]
        except OSError:
            return None
        return max(found, key=lambda p: p.stat().st_mtime) if found else None

    def partial_size(self, sha256: str) -> int:
        """Bytes of an unfinished download of the blob ``sha256`` (0 when none)."""
        path = self.partial(sha256) if sha256 else None
        return path.stat().st_size if path is not None and path.exists() else 0

    def link(self, commit: str, filename: str, sha256: str) -> Path:
        """Point snapshots/<commit>/<filename> at the blob (a relative symlink; a hard link or the file
        itself where symlinks are not allowed) and record refs/main."""
        pointer = self.pointer(commit, filename)
        pointer.parent.mkdir(parents=True, exist_ok=True)
        blob = self.blob(sha256)
        if not pointer.exists():
            tmp = pointer.with_name(f".{pointer.name}.{os.getpid()}.tmp")
            tmp.unlink(missing_ok=True)
            try:
                os.symlink(os.path.relpath(blob, pointer.parent), tmp)
            except OSError:
                try:
                    os.link(blob, tmp)
                except OSError:
                    os.replace(blob, tmp)
            os.replace(tmp, pointer)
        refs = self.root / "refs"
        refs.mkdir(parents=True, exist_ok=True)
        tmp_ref = refs / f".main.{os.getpid()}.tmp"
        tmp_ref.write_text(commit)
        os.replace(tmp_ref, refs / "main")
        return pointer


def sha256_of(path: Path, progress: Callable[[int], None] | None = None, block: int = 8 << 20) -> str:
    digest = hashlib.sha256()
    done = 0
    with path.open("rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done)
    return digest.hexdigest()


def expected_sha256(path: Path, catalog_sha: str = "") -> str:
    """The sha256 a cached file must have: its blob's name (the LFS etag), else the catalog's."""
    name = path.resolve().name
    return name if SHA256.match(name) else catalog_sha


class VerifiedStamps:
    """Remembers which files were hashed and matched (by resolved path, size and mtime)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @staticmethod
    def _key(path: Path) -> tuple[str, dict[str, object]]:
        real = path.resolve()
        st = real.stat()
        return str(real), {"size": st.st_size, "mtime_ns": st.st_mtime_ns}

    def is_verified(self, path: Path, sha256: str) -> bool:
        try:
            key, stat = self._key(path)
        except OSError:
            return False
        return self._load().get(key) == {**stat, "sha256": sha256}

    def record(self, path: Path, sha256: str) -> None:
        key, stat = self._key(path)
        data = self._load()
        data = {k: v for k, v in data.items() if Path(k).exists()}  # forget removed files
        data[key] = {**stat, "sha256": sha256}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    def forget(self, path: Path) -> None:
        data = self._load()
        if data.pop(str(path.resolve()), None) is not None:
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
            os.replace(tmp, self.path)

    def ensure(
        self, path: Path, sha256: str, name: str, progress: Callable[[int], None] | None = None
    ) -> None:
        """Hash ``path`` unless already verified; IntegrityError (nothing recorded) when it differs."""
        if not sha256 or self.is_verified(path, sha256):
            return
        actual = sha256_of(path, progress)
        if actual != sha256:
            raise IntegrityError(
                f"{name}: {path} is corrupt (sha256 {actual[:12]}…, expected {sha256[:12]}…); "
                f"remove it with 'g3chat models rm {name}' and pull it again"
            )
        self.record(path, sha256)
