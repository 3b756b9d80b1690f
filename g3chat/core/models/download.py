"""Verified, resumable downloads from the Hugging Face Hub into the shared HF cache.

The protocol is huggingface_hub's: ``HfApi.model_info(files_metadata=True)`` for the commit, sizes and LFS
sha256 of every file; ``get_hf_file_metadata`` (HEAD on /resolve, stopping at the redirect to the CDN) for
the download location and the headers (``build_hf_headers``: token, user agent) to send there.

Why not ``hf_hub_download``: in huggingface_hub 2.x it deletes its partial file when interrupted, so a
Ctrl+C or a crash loses everything; its ``http_get`` buffers 10 MiB before writing, so each dropped
connection re-fetches up to 10 MiB; and httpx parses a body in 64 KiB events, at a fifth of the speed of
reading big blocks from the socket. g3chat keeps its own partial (``blobs/<sha256>.incomplete``, the name
the HF cache tools know), reads the body in 4 MiB blocks from the socket of an httpx2 request
(:mod:`g3chat.core.models.body`), writes every block it received and resumes with a Range request — after
a dropped connection (a few retries with backoff) or in a later run.
The sha256 is computed while the bytes arrive, on a second thread (the partial's bytes first, when
resuming), so verification adds no pass at 100 %. Only a file whose sha256 matches is renamed to its final
name.

Progress goes to a callback; the core prints nothing.
"""

from __future__ import annotations

import hashlib
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlparse

from g3chat.core.errors import G3ChatError, Interrupted
from g3chat.core.models.hubcache import SHA256, HubConfig, IntegrityError, RepoCache, VerifiedStamps

MiB = 1 << 20
DISK_RESERVE = 64 * MiB  # left free after a download, so the disk is not filled to the last byte
REPORT_EVERY = 1 << 20  # progress events at most every MiB
BLOCK = 4 << 20  # bytes read from the socket at a time
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 20.0  # no byte for this long: the connection is treated as dropped and resumed


class DownloadError(G3ChatError):
    """A download could not start or finish (the partial file, if any, is kept for resuming)."""


class HubUnreachable(DownloadError):
    """The Hub cannot be reached, or offline mode is on."""


class DiskFullError(DownloadError):
    """Not enough free disk for the download."""


class DownloadInterrupted(Interrupted):
    """Ctrl+C during a download: the partial file is kept. Exit code 130."""


@dataclass(frozen=True)
class RemoteFile:
    repo: str
    filename: str
    commit: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Progress:
    filename: str
    phase: str  # "checking" (hashing a partial), "downloading", "done"
    done: int
    total: int
    resumed_from: int = 0


ProgressCallback = Callable[[Progress], None]


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def repo_listing(hub: HubConfig, repo: str, revision: str = "main") -> dict[str, RemoteFile]:
    """Every file of ``repo`` at ``revision`` with size and sha256 (LFS files), from the Hub API."""
    if hub.offline:
        raise HubUnreachable(f"offline mode is on (HF_HUB_OFFLINE): cannot ask the Hub about {repo}")
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    try:
        info = HfApi(endpoint=hub.endpoint, token=hub.token).model_info(
            repo, revision=revision, files_metadata=True, timeout=hub.timeout
        )
    except OfflineModeIsEnabled:
        raise HubUnreachable(
            f"offline mode is on (HF_HUB_OFFLINE): cannot ask the Hub about {repo}"
        ) from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        if status >= 500:
            raise HubUnreachable(f"the Hugging Face Hub at {hub.endpoint} is down (HTTP {status})") from None
        raise DownloadError(f"the Hub refused {repo} (HTTP {status}): {_reason(exc)}") from None
    except Exception as exc:  # httpx errors: DNS, refused, timeout, TLS
        raise HubUnreachable(f"cannot reach the Hugging Face Hub at {hub.endpoint}: {_reason(exc)}") from None
    commit = info.sha or revision
    files = {}
    for sibling in info.siblings or []:
        lfs = sibling.lfs
        sha = lfs.sha256 if lfs is not None else ""
        size = lfs.size if lfs is not None else (sibling.size or 0)
        files[sibling.rfilename] = RemoteFile(repo, sibling.rfilename, commit, int(size or 0), sha or "")
    return files


def find_projector(files: dict[str, RemoteFile]) -> RemoteFile | None:
    """The repo's vision projector (mmproj-*.gguf), f16 preferred."""
    found = [
        f
        for name, f in files.items()
        if Path(name).name.lower().startswith("mmproj") and name.endswith(".gguf")
    ]
    if not found:
        return None
    rank = ("f16", "bf16", "f32", "q8_0")

    def order(f: RemoteFile) -> tuple[int, str]:
        lower = f.filename.lower()
        return next((i for i, tag in enumerate(rank) if tag in lower), len(rank)), f.filename

    return min(found, key=order)


def _free_disk(path: Path) -> int:
    for candidate in (path, *path.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return 1 << 62


def download(
    hub: HubConfig,
    remote: RemoteFile,
    stamps: VerifiedStamps,
    *,
    progress: ProgressCallback | None = None,
    disk_free: Callable[[Path], int] = _free_disk,
) -> Path:
    """Fetch ``remote`` into the cache (or reuse it there), verified; return the snapshot path.

    A Ctrl+C at any moment — hashing a kept partial, asking the Hub, receiving, or after the last byte when
    the file is being put in place — is one :class:`DownloadInterrupted` saying what is on disk.
    """
    cache = RepoCache.of(hub.cache_dir, remote.repo)
    if not SHA256.match(remote.sha256):
        raise DownloadError(
            f"{remote.repo}/{remote.filename}: the Hub publishes no sha256 for it; not downloading"
        )
    try:
        return _download(hub, remote, stamps, cache, progress or (lambda p: None), disk_free)
    except KeyboardInterrupt:
        raise _interrupted(remote, cache) from None


def _interrupted(remote: RemoteFile, cache: RepoCache) -> DownloadInterrupted:
    blob = cache.blob(remote.sha256)
    if blob.exists() and blob.stat().st_size == remote.size:
        return DownloadInterrupted(
            f"interrupted: {remote.filename} is complete in the cache; run the same command to finish"
        )
    kept = cache.partial_size(remote.sha256)
    return DownloadInterrupted(
        f"interrupted: {kept / MiB:,.0f} of {remote.size / MiB:,.0f} MiB of {remote.filename} kept; "
        "run the same command to resume"
    )


def _download(
    hub: HubConfig,
    remote: RemoteFile,
    stamps: VerifiedStamps,
    cache: RepoCache,
    report: ProgressCallback,
    disk_free: Callable[[Path], int],
) -> Path:
    blob = cache.blob(remote.sha256)
    if blob.exists() and blob.stat().st_size == remote.size:
        pointer = cache.link(remote.commit, remote.filename, remote.sha256)
        stamps.ensure(
            pointer,
            remote.sha256,
            remote.filename,
            lambda n: report(Progress(remote.filename, "checking", n, remote.size)),
        )
        report(Progress(remote.filename, "done", remote.size, remote.size))
        return pointer
    if hub.offline:
        raise HubUnreachable(f"offline mode is on (HF_HUB_OFFLINE): cannot download {remote.filename}")
    from filelock import FileLock, Timeout

    partial = cache.partial(remote.sha256)
    partial.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(partial) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise DownloadError(f"{remote.filename} is being downloaded by another process") from None
    try:
        return _fetch(hub, remote, cache, partial, stamps, report, disk_free)
    finally:
        lock.release()
        Path(str(partial) + ".lock").unlink(missing_ok=True)


def _fetch(
    hub: HubConfig,
    remote: RemoteFile,
    cache: RepoCache,
    partial: Path,
    stamps: VerifiedStamps,
    report: Callable[[Progress], None],
    disk_free: Callable[[Path], int],
) -> Path:
    have = partial.stat().st_size if partial.exists() else 0
    if have > remote.size:
        partial.unlink()
        have = 0
    needed = remote.size - have
    free = disk_free(partial.parent)
    if free < needed + DISK_RESERVE:
        raise DiskFullError(
            f"not enough disk space for {remote.filename}: it needs {needed / MiB:,.0f} MiB more and "
            f"{partial.parent} has {free / MiB:,.0f} MiB free (set HF_HUB_CACHE to download elsewhere)"
        )
    digest = hashlib.sha256()
    if have:
        with partial.open("rb") as fh:
            done = 0
            while chunk := fh.read(8 * MiB):
                digest.update(chunk)
                done += len(chunk)
                report(Progress(remote.filename, "checking", done, have))
    url, headers = _location(hub, remote)
    report(Progress(remote.filename, "downloading", have, remote.size, have))
    with partial.open("ab") as raw:
        digest = _transfer(url, headers, remote, raw, have, digest, report)
    actual = digest.hexdigest()
    if actual != remote.sha256:
        partial.unlink(missing_ok=True)
        raise IntegrityError(
            f"{remote.filename}: the downloaded bytes do not match the published sha256 "
            f"({actual[:12]}…, expected {remote.sha256[:12]}…); the corrupt download was deleted — try again"
        )
    os.chmod(partial, 0o644)
    os.replace(partial, cache.blob(remote.sha256))
    pointer = cache.link(remote.commit, remote.filename, remote.sha256)
    stamps.record(pointer, remote.sha256)
    report(Progress(remote.filename, "done", remote.size, remote.size, have))
    return pointer


RETRIES = 5  # consecutive failed attempts (no byte received) before giving up
BACKOFF_S = 0.5  # first wait after a dropped connection; doubles up to 8 s


class _Sink:
    """Hashes and writes received chunks on a second thread, so the socket is read while the last chunk is
    hashed and written (hashlib and file writes release the GIL). ``finish`` drains it: after a dropped
    connection or Ctrl+C every byte received is on disk before anything else happens."""

    def __init__(self, raw: BinaryIO, digest: Any) -> None:
        self.raw = raw
        self.digest = digest
        self.written = 0
        self.error: BaseException | None = None
        self._queue: queue.Queue[bytes | memoryview | None] = queue.Queue(maxsize=8)
        self._thread = threading.Thread(target=self._run, name="g3chat-download-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self.error is not None:
                continue  # keep draining so the reader never blocks
            try:
                self.digest.update(chunk)
                self.raw.write(chunk)
                self.written += len(chunk)
            except BaseException as exc:  # a full disk: reported by finish()
                self.error = exc

    def put(self, chunk: bytes | memoryview) -> None:
        if self.error is not None:  # not transient: a full disk, a read-only cache
            name = getattr(self.raw, "name", "the partial file")
            raise DownloadError(f"cannot write {name}: {_reason(self.error)}")
        self._queue.put(chunk)

    def finish(self) -> int:
        self._queue.put(None)
        self._thread.join()
        return self.written


class _Dropped(Exception):
    """A response that ended too soon or a status worth retrying (5xx, 408, 429)."""


def _transfer(
    url: str,
    headers: dict[str, str],
    remote: RemoteFile,
    raw: BinaryIO,
    have: int,
    digest: Any,
    report: Callable[[Progress], None],
) -> Any:
    """Append the rest of the file to ``raw`` (at offset ``have``), hashing as it goes; return the digest.

    The request goes through httpx2, as huggingface_hub's own (environment proxies, ``NO_PROXY``,
    ``SSL_CERT_FILE``); the body is read ``BLOCK`` bytes at a time straight from the socket
    (:mod:`g3chat.core.models.body`: httpx2's 64 KiB events run at a fifth of the speed here).
    """
    import httpx2 as httpx

    from g3chat.core.models.body import body_blocks

    position, failures, resumed_from = have, 0, have

    def failed(reason: str) -> DownloadError:
        return DownloadError(
            f"download of {remote.filename} failed after {position / MiB:,.0f} of "
            f"{remote.size / MiB:,.0f} MiB ({reason}); run the same command to resume"
        )

    timeout = httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
    limits = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(timeout=timeout, limits=limits, follow_redirects=True) as client:
        while position < remote.size:
            request_headers = {**headers, "Accept-Encoding": "identity"}
            if position:
                request_headers["Range"] = f"bytes={position}-"
            sink: _Sink | None = None
            start = position
            try:
                with client.stream("GET", url, headers=request_headers) as response:
                    if response.status_code >= 500 or response.status_code in (408, 429):
                        raise _Dropped(f"HTTP {response.status_code}")
                    if response.status_code not in (200, 206):
                        raise failed(f"HTTP {response.status_code} from {urlparse(url).netloc}")
                    if position and response.status_code == 200:  # the server ignored Range: start over
                        raw.seek(0)
                        raw.truncate()
                        digest, position, resumed_from, start = hashlib.sha256(), 0, 0, 0
                    sink = _Sink(raw, digest)
                    received, reported = 0, 0
                    for block in body_blocks(response, remote.size - start, BLOCK, READ_TIMEOUT_S):
                        sink.put(block)
                        received += len(block)
                        failures = 0
                        if received - reported >= REPORT_EVERY or start + received >= remote.size:
                            reported = received
                            done = start + received
                            report(Progress(remote.filename, "downloading", done, remote.size, resumed_from))
                    if start + received < remote.size:
                        raise _Dropped("the connection closed early")
                position = start + sink.finish()
            except (_Dropped, httpx.TransportError, OSError) as exc:
                position = start + (sink.finish() if sink is not None else 0)
                failures += 1
                if failures > RETRIES:
                    raise failed(_reason(exc)) from None
                report(Progress(remote.filename, "retrying", position, remote.size, resumed_from))
                time.sleep(min(8.0, BACKOFF_S * 2 ** (failures - 1)))
                continue
            except BaseException:
                if sink is not None:
                    sink.finish()
                raise
            if sink.error is not None:
                raise failed(_reason(sink.error))
    if position > remote.size:
        raw.truncate(remote.size)
    return digest


def _location(hub: HubConfig, remote: RemoteFile) -> tuple[str, dict[str, str]]:
    """Where to GET the file (the CDN location the Hub redirects to) and the headers to send there."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.utils import build_hf_headers

    url = hf_hub_url(remote.repo, remote.filename, revision=remote.commit, endpoint=hub.endpoint)
    try:
        meta = get_hf_file_metadata(url, token=hub.token, timeout=hub.timeout, endpoint=hub.endpoint)
    except Exception as exc:
        raise HubUnreachable(f"cannot reach the Hugging Face Hub at {hub.endpoint}: {_reason(exc)}") from None
    if meta.size is not None and meta.size != remote.size:
        raise DownloadError(
            f"{remote.filename}: the Hub reports {meta.size:,} bytes for it in one place, "
            f"{remote.size:,} in another"
        )
    headers = build_hf_headers(token=hub.token)
    location = meta.location or url
    if urlparse(location).netloc != urlparse(hub.endpoint).netloc:
        headers.pop("authorization", None)  # a signed CDN URL: never send the token there
    return location, headers


def probe_hub(hub: HubConfig, repo: str, timeout: float = 4.0) -> dict[str, RemoteFile]:
    """The repo listing, or HubUnreachable within ``timeout`` seconds whatever the network does.

    Name resolution can block far longer than any HTTP timeout when there is no network, so the request
    runs in a daemon thread that is abandoned when the time is up.
    """
    import threading
    from dataclasses import replace

    result: dict[str, object] = {}

    def work() -> None:
        try:
            result["files"] = repo_listing(replace(hub, timeout=timeout), repo)
        except Exception as exc:  # delivered to the caller below
            result["error"] = exc

    thread = threading.Thread(target=work, name="g3chat-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    if "files" in result:
        return result["files"]  # type: ignore[return-value]
    error = result.get("error")
    if isinstance(error, HubUnreachable):
        raise error
    reason = _reason(error) if isinstance(error, BaseException) else f"no answer within {timeout:.0f} s"
    raise HubUnreachable(f"cannot reach the Hugging Face Hub at {hub.endpoint}: {reason}")
