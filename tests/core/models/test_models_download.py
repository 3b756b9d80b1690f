"""Downloads through the Hub protocol against a local server: fresh, resumed, corrupted, disk, offline."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from g3chat.core.models.download import (
    DiskFullError,
    DownloadError,
    DownloadInterrupted,
    HubUnreachable,
    Progress,
    download,
    find_projector,
    probe_hub,
    repo_listing,
)
from g3chat.core.models.hubcache import HubConfig, IntegrityError, RepoCache, VerifiedStamps
from tests.hubserver import COMMIT, HubFile, HubServer

REPO = "acme/tiny-GGUF"
SIZE = 6 * 1024 * 1024 + 123  # a few MB, not a multiple of any chunk size


@pytest.fixture(scope="module")
def blob_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("blobs") / "tiny-Q4_K_M.gguf"
    path.write_bytes(os.urandom(SIZE))
    return path


@pytest.fixture
def hub(blob_file: Path, tmp_path: Path) -> Iterator[HubServer]:
    projector = tmp_path / "mmproj-tiny-f16.gguf"
    projector.write_bytes(os.urandom(50_000))
    files = [
        HubFile(REPO, "tiny-Q4_K_M.gguf", blob_file),
        HubFile(REPO, "mmproj-tiny-f16.gguf", projector),
        HubFile(REPO, "README.md", blob_file.with_name("README.md")),
    ]
    with HubServer(files) as server:
        yield server


@pytest.fixture(autouse=True)
def _readme(blob_file: Path) -> None:
    blob_file.with_name("README.md").write_text("# tiny\n")


def config(hub: HubServer, tmp_path: Path, **changes: object) -> HubConfig:
    base = HubConfig(hub.endpoint, "hf_secret", False, tmp_path / "hf" / "hub", timeout=5)
    return HubConfig(**{**base.__dict__, **changes})


def stamps(tmp_path: Path) -> VerifiedStamps:
    return VerifiedStamps(tmp_path / "state" / "verified.json")


def the_file(hub: HubServer) -> HubFile:
    return hub.state.files[0]


def test_listing_reads_sizes_sha256_and_finds_the_projector(hub: HubServer, tmp_path: Path) -> None:
    files = repo_listing(config(hub, tmp_path), REPO)
    model = files["tiny-Q4_K_M.gguf"]
    assert (model.size, model.sha256, model.commit) == (SIZE, the_file(hub).sha256, COMMIT)
    projector = find_projector(files)
    assert projector is not None and projector.filename == "mmproj-tiny-f16.gguf"


def test_fresh_download_into_the_hf_cache_layout(hub: HubServer, tmp_path: Path) -> None:
    cfg = config(hub, tmp_path)
    events: list[Progress] = []
    remote = repo_listing(cfg, REPO)["tiny-Q4_K_M.gguf"]
    path = download(cfg, remote, stamps(tmp_path), progress=events.append)
    cache = RepoCache.of(cfg.cache_dir, REPO)
    assert path == cache.pointer(COMMIT, "tiny-Q4_K_M.gguf") and path.is_symlink()
    assert path.resolve() == cache.blob(remote.sha256)
    assert path.read_bytes() == the_file(hub).path.read_bytes()
    assert (cache.root / "refs" / "main").read_text() == COMMIT
    assert not cache.partial(remote.sha256).exists()
    assert hub.sent(remote.sha256) == SIZE  # every byte once
    assert stamps(tmp_path).is_verified(path, remote.sha256)
    done = [e.done for e in events if e.phase == "downloading"]
    assert done == sorted(done) and done[-1] == SIZE  # progress never goes backwards
    assert events[-1].phase == "done"
    # The token goes to the Hub, never to the CDN the Hub redirects to.
    auth = {path: sent for _method, path, _range, sent in hub.state.requests}
    assert auth[f"/api/models/{REPO}/revision/main"] is True
    assert all(not sent for _m, p, _r, sent in hub.state.requests if p.startswith("/cdn/"))


def test_download_over_https_trusts_the_ca_in_ssl_cert_file(
    blob_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One HTTP client for the Hub API and the file itself, so one CA setting serves both.
    from huggingface_hub import close_session

    from tests.fixtures.tls import self_signed, server_context

    cert, key = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    close_session()  # huggingface_hub keeps one client per process, made with the CAs of its time
    try:
        with HubServer([HubFile(REPO, "tiny-Q4_K_M.gguf", blob_file)], tls=server_context(cert, key)) as hub:
            cfg = config(hub, tmp_path)
            remote = repo_listing(cfg, REPO)["tiny-Q4_K_M.gguf"]
            path = download(cfg, remote, stamps(tmp_path))
            assert path.read_bytes() == blob_file.read_bytes()
            assert hub.sent(remote.sha256) == SIZE
    finally:
        close_session()


def test_resume_after_the_server_drops_the_connection(hub: HubServer, tmp_path: Path) -> None:
    cfg = config(hub, tmp_path)
    remote = repo_listing(cfg, REPO)["tiny-Q4_K_M.gguf"]
    hub.state.drop_after[remote.sha256] = 2_500_000
    events: list[Progress] = []
    path = download(cfg, remote, stamps(tmp_path), progress=events.append)
    assert path.read_bytes() == the_file(hub).path.read_bytes()
    ranges = [r for _m, p, r, _a in hub.blob_requests() if p.startswith("/cdn/")]
    assert ranges[0] is None and ranges[1] is not None and ranges[1].startswith("bytes=")
    resumed_at = int(ranges[1].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= 2_500_000
    assert hub.sent(remote.sha256) - SIZE <= 2_500_000 - resumed_at  # only bytes lost in flight are re-sent
    assert any(e.phase == "retrying" for e in events)


def test_interrupted_download_keeps_its_partial_and_resumes_later(hub: HubServer, tmp_path: Path) -> None:
    cfg = config(hub, tmp_path)
    remote = repo_listing(cfg, REPO)["tiny-Q4_K_M.gguf"]
    hub.state.throttle_s = 0.002

    def ctrl_c(event: Progress) -> None:
        if event.phase == "downloading" and event.done >= 2_000_000:
            raise KeyboardInterrupt

    with pytest.raises(DownloadInterrupted, match="kept; run the same command to resume") as info:
        download(cfg, remote, stamps(tmp_path), progress=ctrl_c)
    assert info.value.exit_code == 130
    cache = RepoCache.of(cfg.cache_dir, REPO)
    partial = cache.partial(remote.sha256)
    kept = partial.stat().st_size
    assert kept >= 2_000_000 and not cache.blob(remote.sha256).exists()
    assert not cache.pointer(COMMIT, remote.filename).exists()  # nothing under the final name
    # huggingface_hub's own cache scanner sees it as an interrupted download.
    from huggingface_hub import scan_cache_dir

    assert {f.file_path for f in scan_cache_dir(cfg.cache_dir).incomplete_files} == {partial}
    hub.state.throttle_s = 0.0
    before = hub.sent(remote.sha256)
    events: list[Progress] = []
    path = download(cfg, remote, stamps(tmp_path), progress=events.append)
    assert path.read_bytes() == the_file(hub).path.read_bytes()
    assert hub.sent(remote.sha256) - before == SIZE - kept  # the second run fetched only the rest
    assert events[0].phase == "checking"  # the kept bytes were hashed, not fetched again


@pytest.mark.parametrize("moment", ["checking", "downloading", "done"])
def test_ctrl_c_at_any_moment_of_a_download_is_one_clean_interruption(
    hub: HubServer, tmp_path: Path, moment: str
) -> None:
    """Ctrl+C while the kept bytes are hashed, before the first new byte, or as the finished file is put in
    place (the download ended between the Ctrl+C and its handler): DownloadInterrupted (exit 130, one line
    saying what is on disk), the kept bytes intact, and the next run fetches only what is missing."""
    cfg = config(hub, tmp_path)
    remote = repo_listing(cfg, REPO)["tiny-Q4_K_M.gguf"]
    cache = RepoCache.of(cfg.cache_dir, REPO)
    partial = cache.partial(remote.sha256)
    partial.parent.mkdir(parents=True)
    partial.write_bytes(the_file(hub).path.read_bytes()[:2_000_000])

    def ctrl_c(event: Progress) -> None:
        if event.phase == moment:
            raise KeyboardInterrupt

    caught: BaseException | None = None
    try:
        download(cfg, remote, stamps(tmp_path), progress=ctrl_c)
    except BaseException as exc:  # a bare KeyboardInterrupt must not stop pytest itself
        caught = exc
    assert isinstance(caught, DownloadInterrupted), repr(caught)
    assert caught.exit_code == 130 and len(str(caught).splitlines()) == 1
    if moment == "done":
        assert "run the same command to finish" in str(caught) and not partial.exists()
        assert cache.blob(remote.sha256).read_bytes() == the_file(hub).path.read_bytes()
    else:
        assert str(caught).startswith("interrupted: 2 of 6 MiB of tiny-Q4_K_M.gguf kept")
        assert partial.stat().st_size == 2_000_000 and not cache.blob(remote.sha256).exists()
    before = hub.sent(remote.sha256)
    path = download(cfg, remote, stamps(tmp_path))
    assert path.read_bytes() == the_file(hub).path.read_bytes()
    assert hub.sent(remote.sha256) - before == (0 if moment == "done" else SIZE - 2_000_000)


def test_corrupted_bytes_are_rejected_and_never_used(hub: HubServer, tmp_path: Path) -> None:
    cfg = config(hub, tmp_path)
    remote = repo_listing(cfg, REPO)["tiny-Q4_K_M.gguf"]
    hub.state.corrupt.add(remote.sha256)
    with pytest.raises(IntegrityError, match=r"do not match the published sha256.*deleted"):
        download(cfg, remote, stamps(tmp_path))
    cache = RepoCache.of(cfg.cache_dir, REPO)
    assert not cache.blob(remote.sha256).exists() and not cache.partial(remote.sha256).exists()
    assert cache.find(remote.filename) is None
    hub.state.corrupt.clear()
    assert download(cfg, remote, stamps(tmp_path)).read_bytes() == the_file(hub).path.read_bytes()


def test_too_little_disk_is_an_error_before_any_byte(hub: HubServer, tmp_path: Path) -> None:
    cfg = config(hub, tmp_path)
    remote = repo_listing(cfg, REPO)["tiny-Q4_K_M.gguf"]
    with pytest.raises(DiskFullError, match=r"not enough disk space for tiny-Q4_K_M.gguf: it needs 6 MiB"):
        download(cfg, remote, stamps(tmp_path), disk_free=lambda path: 10 * 1024 * 1024)
    assert hub.blob_requests() == []


def test_offline_mode_and_an_unreachable_hub(hub: HubServer, tmp_path: Path) -> None:
    cfg = config(hub, tmp_path, offline=True)
    with pytest.raises(HubUnreachable, match="HF_HUB_OFFLINE"):
        repo_listing(cfg, REPO)
    assert hub.state.requests == []  # offline means no request at all
    with pytest.raises(HubUnreachable, match=r"cannot reach the Hugging Face Hub at http://127\.0\.0\.1:9"):
        probe_hub(config(hub, tmp_path, endpoint="http://127.0.0.1:9"), REPO, timeout=2)
    hub.state.offline = True  # the server answers 503: down, as good as unreachable
    with pytest.raises(HubUnreachable, match="HTTP 503"):
        repo_listing(config(hub, tmp_path), REPO)


def test_a_file_another_tool_fetched_is_reused(hub: HubServer, tmp_path: Path) -> None:
    """huggingface_hub's own hf_hub_download fills the cache; g3chat then fetches nothing."""
    from huggingface_hub import hf_hub_download

    cfg = config(hub, tmp_path)
    theirs = hf_hub_download(REPO, "tiny-Q4_K_M.gguf", cache_dir=cfg.cache_dir, endpoint=hub.endpoint)
    sent = hub.sent(the_file(hub).sha256)
    remote = repo_listing(cfg, REPO)["tiny-Q4_K_M.gguf"]
    path = download(cfg, remote, stamps(tmp_path))
    assert Path(theirs) == path and hub.sent(the_file(hub).sha256) == sent
    assert stamps(tmp_path).is_verified(path, remote.sha256)  # hashed once before first use


def test_missing_sha256_is_refused(hub: HubServer, tmp_path: Path) -> None:
    cfg = config(hub, tmp_path)
    remote = repo_listing(cfg, REPO)["tiny-Q4_K_M.gguf"]
    with pytest.raises(DownloadError, match="publishes no sha256"):
        download(
            cfg, type(remote)(remote.repo, remote.filename, remote.commit, remote.size, ""), stamps(tmp_path)
        )
