"""What differs between the two experiments' configs, generated from their provenance.json.

Each experiment's config is resolved as the report resolves it (its preset with its overrides,
dqn.config.resolve), so a key counts as differing when the values the runs trained with differ,
whether it was set by a preset or an override. Beside the hyperparameters: the preset, the games
and seeds planned, the code's git commit (and whether the checkout had local changes) and the
package versions.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from analysis.report.results import Results
from analysis.report.comparability import experiment_hyperparameters

COLUMNS = ("key", "a", "b")
# A list this long is shown by its length and the items the other side lacks, not in full.
LONG_LIST_ITEMS = 8


def resolved_config(results: Results) -> dict[str, Any]:
    """The flat config of one experiment: key -> value (a hyperparameter's own name; the others as below)."""
    provenance = results.provenance
    flat: dict[str, Any] = {"preset": provenance.get("preset")}
    hp = experiment_hyperparameters(results)
    if hp is not None:
        flat.update(hp.to_dict())
    else:
        # A preset this code does not know: the overrides as recorded are all there is to compare.
        overrides = provenance.get("overrides") or {}
        flat.update({f"overrides.{key}": value for key, value in dict(overrides).items()})
    flat["games"] = list(provenance.get("games") or [])
    flat["seeds"] = list(provenance.get("seeds") or [])
    flat["git_commit"] = provenance.get("git_commit")
    flat["git_dirty"] = provenance.get("git_dirty")
    for package, version in dict(provenance.get("versions") or {}).items():
        flat[f"versions.{package}"] = version
    return flat


def value_text(value: Any, other: Any, key: str = "items") -> str:
    """How a value is shown; a long list by its length ("49 games") and what `other` lacks."""
    if value is None:
        return "(not recorded)"
    if isinstance(value, list):
        if len(value) <= LONG_LIST_ITEMS:
            return ", ".join(map(str, value)) or "(none)"
        extra = [item for item in value if item not in (other if isinstance(other, list) else [])]
        return f"{len(value)} {key}" + (f"; not in the other: {', '.join(map(str, extra))}" if extra else "")
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "(none)"
    return str(value)


def config_difference(a: Results, b: Results) -> pd.DataFrame:
    """One row per key whose value differs (key, a, b as text), in the order the keys are first met."""
    config_a, config_b = resolved_config(a), resolved_config(b)
    keys = list(config_a) + [key for key in config_b if key not in config_a]
    rows = []
    for key in keys:
        value_a, value_b = config_a.get(key), config_b.get(key)
        if value_a != value_b:
            rows.append((key, value_text(value_a, value_b, key), value_text(value_b, value_a, key)))
    return pd.DataFrame(rows, columns=list(COLUMNS))
