"""Download throughput: g3chat's verified download against curl, from the same local Hub server, same run.

A file of a few hundred MB is generated into a temporary folder and served by tests/hubserver.py (the Hub
protocol: model info, resolve redirect to a "CDN", Range). Each repeat downloads it with g3chat (listing,
HEAD, GET, sha256 computed on the fly, rename into the HF cache layout) and with ``curl -L -o`` (no
verification at all), interleaved in alternating order so a busy machine slows both alike;
huggingface_hub's own ``hf_hub_download`` runs too, for reference, and so does g3chat with the sha256 replaced
by a no-op (a diagnostic of what the transfer alone costs; never how g3chat downloads). Medians are compared.

    python bench/download.py [--size-mb 300] [--repeats 5] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from g3chat.core.models.download import download, repo_listing  # noqa: E402
from g3chat.core.models.hubcache import HubConfig, VerifiedStamps  # noqa: E402
from tests.hubserver import HubFile, HubServer  # noqa: E402

REPO = "bench/file-GGUF"
NAME = "bench-Q4_K_M.gguf"


def make_file(path: Path, size: int) -> None:
    block = os.urandom(1 << 20)
    with path.open("wb") as fh:
        left = size
        while left > 0:
            fh.write(block[: min(left, len(block))])
            left -= len(block)


def g3chat_run(hub: HubServer, work: Path) -> float:
    cache = work / "g3chat-cache"
    shutil.rmtree(cache, ignore_errors=True)
    config = HubConfig(hub.endpoint, None, False, cache)
    started = time.perf_counter()
    remote = repo_listing(config, REPO)[NAME]
    download(config, remote, VerifiedStamps(work / "verified.json"))
    elapsed = time.perf_counter() - started
    shutil.rmtree(cache, ignore_errors=True)
    return elapsed


class _NoHash:
    """Diagnostic only: stands in for sha256 to show what the transfer alone costs."""

    def __init__(self, sha: str) -> None:
        self.sha = sha

    def update(self, data: object) -> None:
        pass

    def hexdigest(self) -> str:
        return self.sha


def g3chat_unverified_run(hub: HubServer, work: Path) -> float:
    import g3chat.core.models.download as module

    real = module.hashlib.sha256
    module.hashlib.sha256 = lambda: _NoHash(hub.state.files[0].sha256)  # type: ignore[assignment,misc]
    try:
        return g3chat_run(hub, work)
    finally:
        module.hashlib.sha256 = real


def curl_run(hub: HubServer, work: Path) -> float:
    target = work / "curl.out"
    started = time.perf_counter()
    subprocess.run(
        ["curl", "-sSfL", "-o", str(target), f"{hub.endpoint}/{REPO}/resolve/main/{NAME}"], check=True
    )
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


def hf_run(hub: HubServer, work: Path) -> float:
    from huggingface_hub import hf_hub_download

    cache = work / "hf-cache"
    shutil.rmtree(cache, ignore_errors=True)
    started = time.perf_counter()
    hf_hub_download(REPO, NAME, cache_dir=cache, endpoint=hub.endpoint)
    elapsed = time.perf_counter() - started
    shutil.rmtree(cache, ignore_errors=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the file and the downloads")
    args = parser.parse_args()
    if shutil.which("curl") is None:
        raise SystemExit("curl is not installed")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        work = Path(tmp)
        source = work / "source.gguf"
        make_file(source, args.size_mb * 1_000_000)
        size = source.stat().st_size
        times: dict[str, list[float]] = {
            "g3chat": [],
            "curl": [],
            "hf_hub_download": [],
            "g3chat, no sha256": [],
        }
        with HubServer([HubFile(REPO, NAME, source)]) as hub:
            runs = [
                ("curl", curl_run),
                ("g3chat", g3chat_run),
                ("hf_hub_download", hf_run),
                ("g3chat, no sha256", g3chat_unverified_run),
            ]
            for repeat in range(args.repeats):
                for name, run in runs if repeat % 2 == 0 else runs[::-1]:  # alternate the order
                    times[name].append(run(hub, work))
    print(f"{size / 1e6:,.0f} MB from a local Hub server, median of {args.repeats} interleaved runs")
    curl = statistics.median(times["curl"])
    for name, runs in times.items():
        median = statistics.median(runs)
        print(f"  {name:<18} {size / median / 1e6:8.1f} MB/s   {curl / median:5.2f} x curl")
    ratio = curl / statistics.median(times["g3chat"])
    print(f"g3chat / curl throughput: {ratio:.2f} (target >= 0.90; g3chat also checks the sha256, curl not)")


if __name__ == "__main__":
    main()
