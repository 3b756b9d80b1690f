"""The hardware probe, fed simulated cgroup trees, nvidia-smi output and platforms."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from g3chat.core.models.probe import (
    GiB,
    MiB,
    apple_gpu,
    cgroup_memory,
    describe,
    llama_capabilities,
    parse_nvidia_smi,
    probe,
)

NVIDIA_SMI = "NVIDIA GeForce RTX 4090, 24564, 23012\nNVIDIA RTX A2000, 6138, 5900\n"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_limit_of_our_group_and_tightest_parent(tmp_path: Path) -> None:
    write(tmp_path / "cgroup.controllers", "memory cpu\n")
    write(tmp_path / "user.slice" / "memory.max", str(8 * GiB))
    write(tmp_path / "user.slice" / "memory.current", str(1 * GiB))
    write(tmp_path / "user.slice" / "app" / "memory.max", "max\n")
    write(tmp_path / "user.slice" / "app" / "memory.current", str(2 * GiB))
    assert cgroup_memory(tmp_path, "0::/user.slice/app\n") == (8 * GiB, 1 * GiB)
    write(tmp_path / "user.slice" / "app" / "memory.max", str(3 * GiB))
    assert cgroup_memory(tmp_path, "0::/user.slice/app\n") == (3 * GiB, 2 * GiB)


def test_cgroup_v2_inside_a_container_reads_the_namespace_root(tmp_path: Path) -> None:
    write(tmp_path / "cgroup.controllers", "memory\n")
    write(tmp_path / "memory.max", str(4 * GiB))
    write(tmp_path / "memory.current", str(512 * MiB))
    # /proc/self/cgroup names a path that is not visible inside the container's namespace.
    assert cgroup_memory(tmp_path, "0::/../../kubepods/pod1\n") == (4 * GiB, 512 * MiB)
    assert cgroup_memory(tmp_path, "0::/\n") == (4 * GiB, 512 * MiB)


def test_cgroup_v2_without_limit(tmp_path: Path) -> None:
    write(tmp_path / "cgroup.controllers", "memory\n")
    write(tmp_path / "memory.max", "max\n")
    assert cgroup_memory(tmp_path, "0::/\n") == (None, None)


def test_cgroup_v1_limit_and_unlimited(tmp_path: Path) -> None:
    write(tmp_path / "memory" / "docker" / "abc" / "memory.limit_in_bytes", str(6 * GiB))
    write(tmp_path / "memory" / "docker" / "abc" / "memory.usage_in_bytes", str(100 * MiB))
    proc = "12:memory:/docker/abc\n0::/\n"
    assert cgroup_memory(tmp_path, proc) == (6 * GiB, 100 * MiB)
    write(tmp_path / "memory" / "docker" / "abc" / "memory.limit_in_bytes", "9223372036854771712")
    assert cgroup_memory(tmp_path, proc) == (None, None)
    assert cgroup_memory(tmp_path / "nothing", "") == (None, None)


def test_nvidia_smi_output_is_parsed_in_bytes() -> None:
    gpus = parse_nvidia_smi(NVIDIA_SMI + "garbage line\n")
    assert [(g.name, g.total, g.free, g.backend) for g in gpus] == [
        ("NVIDIA GeForce RTX 4090", 24564 * MiB, 23012 * MiB, "cuda"),
        ("NVIDIA RTX A2000", 6138 * MiB, 5900 * MiB, "cuda"),
    ]


def test_apple_silicon_shares_ram_with_the_gpu() -> None:
    gpu = apple_gpu(16 * GiB, 10 * GiB, "darwin", "arm64")
    assert gpu is not None and gpu.backend == "metal"
    assert gpu.total == int(16 * GiB * 0.66) and gpu.free == 10 * GiB
    big = apple_gpu(64 * GiB, 60 * GiB, "darwin", "arm64")
    assert big is not None and big.total == 48 * GiB
    assert apple_gpu(16 * GiB, 8 * GiB, "darwin", "x86_64") is None
    assert apple_gpu(16 * GiB, 8 * GiB, "linux", "arm64") is None


def test_probe_with_simulated_container_and_gpu(tmp_path: Path) -> None:
    write(tmp_path / "cg" / "cgroup.controllers", "memory\n")
    write(tmp_path / "cg" / "memory.max", str(2 * GiB))
    write(tmp_path / "cg" / "memory.current", str(512 * MiB))
    calls: list[list[str]] = []

    def run(args: Sequence[str]) -> str:
        calls.append(list(args))
        return NVIDIA_SMI

    hw = probe(
        tmp_path,
        cgroup_root=tmp_path / "cg",
        proc_cgroup="0::/\n",
        run=run,
        capabilities=lambda: (True, frozenset({"AVX2"})),
        platform="linux",
        machine="x86_64",
    )
    assert calls and calls[0][0] == "nvidia-smi"
    assert hw.cgroup_limit == 2 * GiB and hw.ram_limit == 2 * GiB
    assert hw.ram_budget <= 2 * GiB - 512 * MiB  # the container's headroom, not the host's RAM
    assert hw.best_gpu is not None and hw.best_gpu.name == "NVIDIA GeForce RTX 4090"
    assert hw.disk_free and hw.disk_path == tmp_path
    text = "\n".join(describe(hw))
    assert "container memory limit: 2.0 GiB" in text and "RTX 4090, 24.0 GiB" in text


def test_gpu_unused_by_a_cpu_build(tmp_path: Path) -> None:
    hw = probe(
        None,
        cgroup_root=tmp_path,
        proc_cgroup="",
        run=lambda args: NVIDIA_SMI,
        capabilities=lambda: (False, frozenset()),
        platform="linux",
        machine="x86_64",
    )
    assert hw.gpus and hw.best_gpu is None
    assert any("cannot offload" in line for line in describe(hw))


def test_real_llama_build_reports_its_cpu_features() -> None:
    offload, features = llama_capabilities()
    assert isinstance(offload, bool)
    assert features and all(" " not in f and ":" not in f for f in features)
