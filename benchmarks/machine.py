"""What the numbers were measured on: cores, CPU, memory, load and the versions that matter."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from typing import Any

import psutil

# the CPU features the kernels' speed depends on (SHA-NI for sha256, AVX2/AVX-512 for the scans)
CPU_FLAGS = {"sha_ni", "avx2", "avx512f", "avx512bw"}


def _cpuinfo(key: str) -> str | None:
    """The value of the first ``key`` line of /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _version(module: str) -> str | None:
    try:
        mod = __import__(module)
    except Exception:
        return None
    return str(getattr(mod, "__version__", None) or "unknown")


def _java_version() -> str | None:
    try:
        out = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r'version "([^"]+)"', out.stderr + out.stdout)
    return m.group(1) if m else None


def usable_cores() -> int:
    """The cores this process may run on (its affinity), else the machine's."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def machine() -> dict[str, Any]:
    """The machine and the versions, for the report's first table."""
    vm = psutil.virtual_memory()
    return {
        "hostname": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "cpu_model": _cpuinfo("model name") or platform.processor() or "unknown",
        "cpu_flags": sorted(set((_cpuinfo("flags") or "").split()) & CPU_FLAGS),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "memory_gib": round(vm.total / 2**30, 1),
        "memory_available_gib": round(vm.available / 2**30, 1),
        "load_average": load_average(),
        "python": sys.version.split()[0],
        "spark": _version("pyspark"),
        "java": _java_version(),
        "numpy": _version("numpy"),
        "numba": _version("numba"),
        "pyarrow": _version("pyarrow"),
        "lief": _version("lief"),
        "psutil": psutil.__version__,
    }


def load_average() -> list[float]:
    """The 1, 5 and 15-minute load averages (other tenants' share of a shared machine)."""
    return [round(x, 2) for x in os.getloadavg()]
