"""The rules a batch's columns are checked by, one column at a time: its kind and values against the
contract's spec, infinite values, a target's gaps. ``service.contracts`` applies them to a whole frame, and
the column-wise check (``service.column_check``) to each column as it is read, so both name the same problems.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from service import categorical

if TYPE_CHECKING:  # the contract's types only: service.contracts imports these rules
    from service.contracts import ColumnKind, ColumnSpec, DataContract

_EXAMPLES = 3
Findings = tuple[list[str], list[str], list[str]]  # a column's content, infinite values, missing target


def kind_of(series: pd.Series) -> ColumnKind:
    return "numeric" if is_numeric_dtype(series) and not is_bool_dtype(series) else "categorical"


def finite_values(series: pd.Series) -> np.ndarray:
    values = series.to_numpy(dtype="float64", na_value=np.nan)
    return values[np.isfinite(values)]


def infinite_problems(series: pd.Series, name: str) -> list[str]:
    """±inf is bad input, never drift: Evidently's report and scikit-learn's estimators fail on it."""
    if kind_of(series) != "numeric":
        return []
    count = int(np.isinf(series.to_numpy(dtype="float64", na_value=np.nan)).sum())
    return [f"column {name!r} has {count} infinite values: expected finite numbers"] if count else []


def _accepted_range(spec: ColumnSpec, contract: DataContract) -> tuple[float, float]:
    lowest = -np.inf if spec.minimum is None else spec.minimum
    highest = np.inf if spec.maximum is None else spec.maximum
    margin = (highest - lowest) * contract.range_margin if np.isfinite(highest - lowest) else 0.0
    return lowest - margin, highest + margin


def _range_problems(values: pd.Series, spec: ColumnSpec, contract: DataContract) -> list[str]:
    # Masks (a byte a row) over a view of the column, not a copy of its finite values: a long column is
    # checked with little more memory than it takes itself. Nulls and ±inf are neither inside nor counted.
    numbers = values.to_numpy(dtype="float64", na_value=np.nan)
    finite = np.isfinite(numbers)
    low, high = _accepted_range(spec, contract)
    beyond = ((numbers < low) | (numbers > high)) & finite
    n_finite = int(np.count_nonzero(finite))
    del finite
    outside = numbers[beyond]
    share = outside.size / n_finite if n_finite else 0.0
    if share <= contract.max_out_of_range_share:
        return []
    examples = list(dict.fromkeys(outside.tolist()))[:_EXAMPLES]
    return [
        (
            f"column {spec.name!r} has {share:.1%} values outside [{low:g}, {high:g}] (the reference's range "
            f"[{spec.minimum:g}, {spec.maximum:g}] widened by {contract.range_margin:.0%} of its width; "
            f"e.g. {examples}): expected at most {contract.max_out_of_range_share:.1%}"
        )
    ]


def _column_problems(series: pd.Series, spec: ColumnSpec, contract: DataContract) -> list[str]:
    if not series.notna().any():
        return [f"column {spec.name!r} is entirely null: expected {spec.kind} values"]
    if spec.kind == "numeric" and kind_of(series) == "numeric":
        return _range_problems(series, spec, contract)  # the nulls are left out there: no copy without them
    values = series.dropna()
    if spec.kind == "numeric":
        distinct = pd.Series(sorted(categorical.distinct_strings(values)))
        bad = distinct[pd.to_numeric(distinct, errors="coerce").isna()].tolist()[:_EXAMPLES]
        dtype = categorical.value_dtype(series)
        return [(f"column {spec.name!r} has dtype {dtype}: expected numeric values (found e.g. {bad})")]
    n_unseen, unseen = categorical.unseen(values, spec.categories)
    share = n_unseen / len(values)
    if share > contract.max_unseen_category_share:
        examples = unseen[:_EXAMPLES]
        return [
            (
                f"column {spec.name!r} has {share:.1%} values not seen in the reference (e.g. {examples}): "
                f"expected at most {contract.max_unseen_category_share:.1%}"
            )
        ]
    return []


def column_findings(series: pd.Series, name: str, contract: DataContract, *, require_target: bool) -> Findings:
    spec = next((spec for spec in contract.features if spec.name == name), None)
    label = require_target and name == contract.target
    content = _column_problems(series, spec, contract) if spec else []
    infinite = infinite_problems(series, name) if label or (spec and spec.kind == "numeric") else []
    return content, infinite, missing_target_problems(series, contract) if label else []


def ordered_problems(findings: dict[str, Findings], contract: DataContract, *, require_target: bool) -> list[str]:
    """The columns' problems in a frame's order: contents by feature, infinite values, the target's gaps."""
    labels = [contract.target] if require_target and contract.target else []
    problems = [problem for name in contract.feature_names for problem in findings[name][0]]
    problems += [problem for name in [*contract.numerical, *labels] for problem in findings[name][1]]
    return problems + [problem for name in labels for problem in findings[name][2]]


def missing_target_problems(target: pd.Series, contract: DataContract) -> list[str]:
    missing = target.isna()
    if missing.empty:
        return []
    if missing.all():
        return [f"column {contract.target!r} (the target) is entirely null"]
    share = float(missing.mean())
    if share <= contract.max_missing_target_share:
        return []
    return [
        (
            f"column {contract.target!r} (the target) is missing in {share:.1%} of rows ({int(missing.sum())} of "
            f"{len(target)}): expected at most {contract.max_missing_target_share:.1%}"
        )
    ]
