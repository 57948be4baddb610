"""One line describing the machine a benchmark ran on (shared by the benchmark scripts)."""

from __future__ import annotations

import os
import platform


def cpu_flags() -> set[str]:
    """The CPU's feature flags as /proc/cpuinfo (what `lscpu` shows) lists them; empty elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def summary() -> str:
    """CPU model, cores, the SIMD levels that matter for the kernels, and the load average."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                         model)
    except OSError:
        pass
    flags = cpu_flags()
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl") if f in flags]
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    simd_text = " ".join(simd) or "none of avx2/avx512"
    return f"cpu: {model}; {os.cpu_count()} logical CPUs; flags: {simd_text}; load average {load}"
