"""What the benchmarks share: process setup, timers, peak memory, the printed tables."""

from __future__ import annotations

import os
import platform
import resource
import time
from dataclasses import dataclass
from typing import Any, Sequence


def setup_process(threads: int) -> dict[str, Any]:
    """The training entry point's process settings: malloc thresholds, `threads` torch threads."""
    from dqn.speed.allocator import keep_freed_memory_mapped

    malloc = keep_freed_memory_mapped()
    import torch

    torch.set_num_threads(threads)
    return {"malloc_thresholds": malloc, "torch_threads": threads}


def peak_rss_bytes() -> int:
    """This process's resident-set high-water mark (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    line = f"{cpu}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, torch {torch.__version__}"
    if torch.cuda.is_available():
        line += f", GPU {torch.cuda.get_device_name()}"
    return line


@dataclass
class Stopwatch:
    """Wall and CPU seconds of repeated calls; `sync` (e.g. torch.cuda.synchronize) ends each call."""

    sync: Any = None
    calls: int = 0
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0

    def __enter__(self) -> "Stopwatch":
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        if self.sync is not None:
            self.sync()
        self.wall_seconds += time.perf_counter() - self._wall
        self.cpu_seconds += time.process_time() - self._cpu
        self.calls += 1

    @property
    def wall_ms_per_call(self) -> float:
        return 1e3 * self.wall_seconds / max(self.calls, 1)

    @property
    def cpu_ms_per_call(self) -> float:
        return 1e3 * self.cpu_seconds / max(self.calls, 1)


def device_sync(device: str):
    """A function that waits for the device's queued work (None on the CPU)."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.synchronize
    return None


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A benchmark's output: its title and the machine it ran on as `#` lines, then the table."""
    print(f"# {title}")
    print(f"# {machine()}")
    print(format_table(columns, rows))


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (pipes), numbers formatted to 3-4 significant digits."""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            if v != v:
                return "n/a"
            if abs(v) >= 100:
                return f"{v:,.0f}"
            if abs(v) >= 1:
                return f"{v:.2f}"
            if abs(v) >= 0.001:
                return f"{v:.4f}"
            return f"{v:.1e}" if v else "0"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    text = [[cell(v) for v in row] for row in rows]
    numeric = [[isinstance(v, (int, float)) for v in row] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in text)) if text else len(c) for i, c in enumerate(columns)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    # Numbers right-aligned so that their digits line up; text left-aligned.
    lines += ["| " + " | ".join(v.rjust(w) if is_number else v.ljust(w) for v, w, is_number in zip(r, widths, kinds))
              + " |" for r, kinds in zip(text, numeric)]
    return "\n".join(lines)
