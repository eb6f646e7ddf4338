"""Config at the entry points: a preset by name, with `--set key=value` overrides, parsed and
validated once (`resolve`), and passed down as a frozen `Hyperparameters` object.

    dqn/hyperparameters.py   the dataclass (Extended Data Table 1 of Mnih et al. 2015, with units),
                             the parsing of values and the validation
    dqn/presets.py           the papers' presets and the smaller ones, the notes on how each paper
                             was read, and the deviations of a config from its paper

This module re-exports what callers use from both, so `from dqn.config import ...` stays the one
way in.
"""

from __future__ import annotations

from typing import Any, Mapping

from dqn.errors import UserError
from dqn.hyperparameters import (  # noqa: F401
    NETWORK_INITS,
    NETWORKS,
    PREPROCESSINGS,
    Hyperparameters,
    field_names,
    replaced,
    unit_of,
    validate,
)
from dqn.presets import (  # noqa: F401
    DEMO,
    NATURE,
    NIPS2013,
    NOT_STATED,
    PAPER_NOTES,
    PAPER_PRESETS,
    PAPER_WORDING,
    PRESET_REFERENCE,
    PRESETS,
    Deviation,
    ProtocolNote,
    deviations,
    paper_value,
    protocol_notes,
    register_preset,
)


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """Turn `["key=value", ...]` (from --set) into a dict, refusing malformed entries."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set expects key=value, got {pair!r}")
        out[key.strip()] = value
    return out


def resolve(preset: str = "nature", overrides: Mapping[str, Any] | None = None) -> Hyperparameters:
    """The preset with overrides applied and validated. Unknown keys and bad values are UserErrors."""
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; valid presets: {', '.join(sorted(PRESETS))}")
    return replaced(PRESETS[preset], overrides or {})
