"""What this machine has: RAM (and the container's memory limit), GPU memory, free disk, GPU offload.

Every source is injectable (the cgroup root, the command runner, the llama.cpp query) so tests can play a
machine they are not running on. Nothing here raises for a missing source: an absent GPU, an unreadable
cgroup file or a missing nvidia-smi simply means "none".
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

GiB = 1 << 30
MiB = 1 << 20
_UNLIMITED = 1 << 60  # cgroup v1 reports "no limit" as a number near 2**63


@dataclass(frozen=True)
class GPU:
    name: str
    total: int  # bytes
    free: int  # bytes
    backend: str  # "cuda" or "metal"


@dataclass(frozen=True)
class Hardware:
    ram_total: int
    ram_available: int
    cgroup_limit: int | None = None  # the container's memory limit, when one applies
    cgroup_usage: int | None = None
    gpus: tuple[GPU, ...] = ()
    gpu_offload: bool = False  # whether this llama.cpp build can offload to a GPU
    unified_memory: bool = False  # Apple silicon: the GPU's memory is the RAM
    disk_free: int | None = None
    disk_path: Path | None = None
    cpu_features: frozenset[str] = field(default_factory=frozenset)  # llama.cpp's view: AVX2, NEON, ...

    @property
    def ram_budget(self) -> int:
        """Memory a new model may use now: available RAM, bounded by what the container has left."""
        budget = self.ram_available
        if self.cgroup_limit is not None:
            budget = min(budget, max(0, self.cgroup_limit - (self.cgroup_usage or 0)))
        return budget

    @property
    def ram_limit(self) -> int:
        """Total memory this process can ever have: RAM, or the container's limit if lower."""
        return min(self.ram_total, self.cgroup_limit) if self.cgroup_limit else self.ram_total

    @property
    def best_gpu(self) -> GPU | None:
        if not self.gpu_offload or not self.gpus:
            return None
        return max(self.gpus, key=lambda g: g.free)

    def with_gpus(self, *gpus: GPU, offload: bool = True) -> Hardware:
        return replace(self, gpus=tuple(gpus), gpu_offload=offload)


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if not text or text == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return None if value >= _UNLIMITED else value


def cgroup_memory(
    root: Path = Path("/sys/fs/cgroup"), proc_cgroup: str | None = None
) -> tuple[int | None, int | None]:
    """(limit, usage) in bytes of this process's memory cgroup, v2 or v1; (None, None) without a limit.

    v2: ``memory.max`` and ``memory.current`` of our cgroup and its parents (the tightest limit wins);
    v1: ``memory/memory.limit_in_bytes`` and ``memory.usage_in_bytes``.
    """
    if proc_cgroup is None:
        try:
            proc_cgroup = Path("/proc/self/cgroup").read_text()
        except OSError:
            proc_cgroup = ""
    v2_path = "/"
    v1_path = "/"
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            v2_path = parts[2] or "/"
        elif "memory" in parts[1].split(","):
            v1_path = parts[2] or "/"
    if (root / "cgroup.controllers").exists():  # cgroup v2
        node = root / v2_path.lstrip("/")
        if not node.is_dir():
            node = root  # inside a container the namespace's root is our cgroup
        best: tuple[int, int | None] | None = None
        directory = node
        while True:
            limit = _read_int(directory / "memory.max")
            if limit is not None and (best is None or limit < best[0]):
                best = (limit, _read_int(directory / "memory.current"))
            if directory == root or root not in directory.parents:
                break
            directory = directory.parent
        return best if best is not None else (None, None)
    for base in (root / "memory" / v1_path.lstrip("/"), root / "memory"):
        limit = _read_int(base / "memory.limit_in_bytes")
        if limit is not None:
            return limit, _read_int(base / "memory.usage_in_bytes")
    return None, None


Runner = Callable[[Sequence[str]], str | None]


def run_command(args: Sequence[str], timeout: float = 5.0) -> str | None:
    """stdout of a command, or None when it is missing, fails or takes too long."""
    if shutil.which(args[0]) is None:
        return None
    try:
        proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def parse_nvidia_smi(text: str) -> list[GPU]:
    """GPUs from ``nvidia-smi --query-gpu=name,memory.total,memory.free --format=csv,noheader,nounits``."""
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.rsplit(",", 2)]
        if len(parts) != 3:
            continue
        try:
            total, free = int(float(parts[1])) * MiB, int(float(parts[2])) * MiB
        except ValueError:
            continue
        gpus.append(GPU(parts[0], total, free, "cuda"))
    return gpus


def nvidia_gpus(run: Runner = run_command) -> list[GPU]:
    """NVIDIA GPUs through NVML (the nvidia-ml-py package) when installed, else nvidia-smi."""
    try:
        import pynvml
    except ImportError:
        pynvml = None
    if pynvml is not None:
        try:
            pynvml.nvmlInit()
            try:
                found = []
                for index in range(pynvml.nvmlDeviceGetCount()):
                    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                    memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
                    name = pynvml.nvmlDeviceGetName(handle)
                    name = name.decode() if isinstance(name, bytes) else str(name)
                    found.append(GPU(name, int(memory.total), int(memory.free), "cuda"))
                return found
            finally:
                pynvml.nvmlShutdown()
        except Exception:  # NVML present but no driver: fall back to nvidia-smi
            pass
    out = run(["nvidia-smi", "--query-gpu=name,memory.total,memory.free", "--format=csv,noheader,nounits"])
    return parse_nvidia_smi(out) if out else []


def apple_gpu(ram_total: int, ram_available: int, platform: str, machine: str) -> GPU | None:
    """Apple silicon shares RAM with its GPU; Metal lets a process use about 2/3 of it (3/4 above 36 GB)."""
    if platform != "darwin" or machine != "arm64":
        return None
    share = 0.75 if ram_total >= 36 * GiB else 0.66
    working_set = int(ram_total * share)
    return GPU("Apple silicon (unified memory)", working_set, min(working_set, ram_available), "metal")


def llama_capabilities() -> tuple[bool, frozenset[str]]:
    """(GPU offload supported, CPU features) of the installed llama.cpp build; (False, {}) without one."""
    try:
        import llama_cpp
    except Exception:
        return False, frozenset()
    try:
        offload = bool(llama_cpp.llama_supports_gpu_offload())
        info = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
    except Exception:
        return False, frozenset()
    parts = [part.strip() for part in info.replace("|", "\n").splitlines()]
    features = {part.split("=")[0].split(":")[-1].strip() for part in parts if part.endswith("= 1")}
    return offload, frozenset(features)


def disk_free(path: Path) -> tuple[int | None, Path | None]:
    """Free bytes on the filesystem holding ``path`` (its nearest existing parent)."""
    for candidate in (path, *path.parents):
        try:
            return shutil.disk_usage(candidate).free, candidate
        except OSError:
            continue
    return None, None


def probe(
    models_path: Path | None = None,
    *,
    cgroup_root: Path = Path("/sys/fs/cgroup"),
    proc_cgroup: str | None = None,
    run: Runner = run_command,
    capabilities: Callable[[], tuple[bool, frozenset[str]]] = llama_capabilities,
    platform: str | None = None,
    machine: str | None = None,
) -> Hardware:
    import platform as platform_module

    import psutil

    memory = psutil.virtual_memory()
    limit, usage = cgroup_memory(cgroup_root, proc_cgroup)
    platform = platform or sys.platform
    machine = machine or platform_module.machine()
    offload, features = capabilities()
    gpus: list[GPU] = []
    apple = apple_gpu(memory.total, memory.available, platform, machine)
    if apple is not None:
        gpus.append(apple)
    elif platform.startswith("linux") or platform == "win32":
        gpus.extend(nvidia_gpus(run))
    free, where = disk_free(models_path) if models_path is not None else (None, None)
    return Hardware(
        ram_total=memory.total,
        ram_available=memory.available,
        cgroup_limit=limit if limit is not None and limit < memory.total else None,
        cgroup_usage=usage if limit is not None and limit < memory.total else None,
        gpus=tuple(gpus),
        gpu_offload=offload,
        unified_memory=apple is not None,
        disk_free=free,
        disk_path=where,
        cpu_features=features,
    )


def describe(hw: Hardware) -> list[str]:
    """Human lines for what the probe saw."""
    lines = [f"RAM: {gib(hw.ram_total)} total, {gib(hw.ram_available)} available"]
    if hw.cgroup_limit is not None:
        lines.append(
            f"container memory limit: {gib(hw.cgroup_limit)} ({gib(hw.cgroup_usage or 0)} in use) — this, "
            "not the host's RAM, is what a model can use"
        )
    if hw.gpus:
        for gpu in hw.gpus:
            lines.append(f"GPU: {gpu.name}, {gib(gpu.total)} ({gib(gpu.free)} free)")
    else:
        lines.append("GPU: none found")
    if hw.gpus and not hw.gpu_offload:
        lines.append("this llama.cpp build cannot offload to a GPU (a CPU build): the GPU is not used")
    if hw.disk_free is not None:
        lines.append(f"disk: {gib(hw.disk_free)} free at {hw.disk_path}")
    return lines


def gib(n: int) -> str:
    """Bytes for people: GiB with one decimal, MiB below one GiB."""
    return f"{n / GiB:.1f} GiB" if n >= GiB else f"{n / MiB:.0f} MiB"
