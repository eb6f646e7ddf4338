"""The fast path checked at each start or resume of a training, and the plain path when it fails.

dqn/speed/self_check.py compares the fast path with the plain path from the run's own state; on
a mismatch or an error the run continues on the plain path: one warning, the fallback recorded
in config.json, and the plain path's parts loaded with the same state (a run from step 0 is then
exactly a --fast-path off run).
"""

from __future__ import annotations

import gc
import logging
from typing import Callable

from dqn.loop import Parts, TrainState
from dqn.run_folder import RunFiles, record_fast_path_fallback

log = logging.getLogger(__name__)


def checked_fast_path(parts: Parts, st: TrainState, files: RunFiles, device: str, *,
                      plain_start: Callable[[], tuple[Parts, TrainState]]) -> tuple[Parts, TrainState]:
    """`parts` and `st` when the fast path agrees with the plain path, else what `plain_start`
    builds (the same run on the plain path, from the same checkpoint or step 0)."""
    import torch

    from dqn.speed.self_check import check_fast_path

    verdict = check_fast_path(parts.learner, parts.hp)
    if verdict.passed:
        log.info("fast path checked against the plain path: %d updates and %d acting passes agree (%.1f s)",
                 verdict.updates, verdict.acting_passes, verdict.seconds)
        return parts, st
    log.warning("the fast path failed its check against the plain path (%s); continuing on the plain path "
                "(recorded in config.json as fast_path_fallback)", verdict.reason)
    record_fast_path_fallback(files, reason=str(verdict.reason), agent_steps=st.agent_steps, device=device,
                              check_seconds=verdict.seconds)
    del parts, st
    gc.collect()  # the device replay's memory goes before the host replay is allocated
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
    return plain_start()
