"""Progress lines for long runs: frames done of planned, rate over the last interval, ETA.

The rate is measured over the interval since the previous line, not since the process started,
so warm-up, the replay-start phase and evaluation pauses do not hide the current speed. Each line
can also be handed, as numbers, to `record` (dqn.train writes them to RUN/progress.json, which
`python -m analysis.status` reads: no parsing of log text).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Callable

log = logging.getLogger("dqn.progress")


def format_count(n: float) -> str:
    """12_345_678 -> '12.3M', 4_500 -> '4.5k', 950 -> '950'."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= size:
            return f"{n / size:.1f}{suffix}"
    return f"{n:.0f}"


def format_duration(seconds: float) -> str:
    """Seconds as '2d 03h', '4h 05m', '3m 07s' or '12s'; '?' when unknown."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    days, s = divmod(s, 86_400)
    hours, s = divmod(s, 3_600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {s:02d}s"
    return f"{s}s"


class Progress:
    """Emits one line at most every `interval_seconds` (and whenever forced).

    `clock` and `emit` are injectable so that tests can drive time and read the lines.
    """

    def __init__(
        self,
        frames_planned: int,
        *,
        label: str = "",
        interval_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        emit: Callable[[str], None] = log.info,
        record: Callable[[dict], None] | None = None,
    ):
        self.frames_planned = int(frames_planned)
        self.label = label
        self.interval_seconds = float(interval_seconds)
        self._clock = clock
        self._emit = emit
        self._record = record
        self._last_time: float | None = None
        self._last_frames = 0
        self._last_steps = 0

    def start(self, frames: int, agent_steps: int) -> None:
        """Set the reference point of the first interval (at the start, or on resume)."""
        self._last_time = self._clock()
        self._last_frames = frames
        self._last_steps = agent_steps

    def due(self) -> bool:
        return self._last_time is None or self._clock() - self._last_time >= self.interval_seconds

    def update(self, frames: int, agent_steps: int, *, epsilon: float, last_return: float, force: bool = False) -> str | None:
        """Emit and return a progress line if the interval has passed (or `force`); else None."""
        if not (force or self.due()):
            return None
        now = self._clock()
        if self._last_time is None:
            self.start(frames, agent_steps)
            return None
        elapsed = now - self._last_time
        steps_per_second = (agent_steps - self._last_steps) / elapsed if elapsed > 0 else math.nan
        frames_per_second = (frames - self._last_frames) / elapsed if elapsed > 0 else math.nan
        remaining_frames = max(self.frames_planned - frames, 0)
        if remaining_frames == 0:
            eta = 0.0
        elif frames_per_second > 0:
            eta = remaining_frames / frames_per_second
        else:
            eta = math.nan
        percent = 100.0 * frames / self.frames_planned if self.frames_planned else 100.0
        last = "none yet" if math.isnan(last_return) else f"{last_return:g}"
        line = (
            f"{self.label}{format_count(frames)}/{format_count(self.frames_planned)} frames ({percent:.1f}%), "
            f"{steps_per_second:.1f} agent steps/s, ETA {format_duration(eta)}, "
            f"epsilon {epsilon:.3f}, last episode return {last}"
        )
        self._emit(line)
        if self._record is not None:
            self._record({"frames": int(frames), "frames_planned": self.frames_planned, "agent_steps": int(agent_steps),
                          "agent_steps_per_second": steps_per_second, "eta_seconds": eta, "epsilon": float(epsilon),
                          "unix_time": time.time()})
        self._last_time = now
        self._last_frames = frames
        self._last_steps = agent_steps
        return line
