"""The data contract of a model: which columns, of which kind, with which categories or ranges, how many rows.

A contract is drawn from the reference window (the champion's training data) and the config, and every
batch is checked against it before anything else happens: a bad batch stops the run with an error that
names the file and column, before a model is trained or an alias is moved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from service import categorical
from service.errors import ContractViolation
from service.settings import Config

ColumnKind = Literal["numeric", "categorical"]
_EXAMPLES = 3


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: ColumnKind
    categories: frozenset[str] = frozenset()
    # numeric only: the reference's finite extremes; None = unbounded (contracts stored before ranges)
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class DataContract:
    features: tuple[ColumnSpec, ...]
    target: str | None  # None for ad-hoc checks of unlabeled files
    ignore: tuple[str, ...]
    min_rows: int
    max_unseen_category_share: float
    max_missing_target_share: float = 0.05
    max_out_of_range_share: float = 0.01
    range_margin: float = 0.5

    @property
    def feature_names(self) -> list[str]:
        return [spec.name for spec in self.features]

    @property
    def numerical(self) -> list[str]:
        return [spec.name for spec in self.features if spec.kind == "numeric"]

    @property
    def categorical(self) -> list[str]:
        return [spec.name for spec in self.features if spec.kind == "categorical"]


def _kind_of(series: pd.Series) -> ColumnKind:
    return "numeric" if is_numeric_dtype(series) and not is_bool_dtype(series) else "categorical"


def _finite(series: pd.Series) -> np.ndarray:
    values = series.to_numpy(dtype="float64", na_value=np.nan)
    return values[np.isfinite(values)]


def _spec(series: pd.Series, name: str) -> ColumnSpec:
    if _kind_of(series) == "categorical":
        return ColumnSpec(name, "categorical", categorical.distinct_strings(series))
    finite = _finite(series)
    if finite.size == 0:
        return ColumnSpec(name, "numeric")
    return ColumnSpec(name, "numeric", minimum=float(finite.min()), maximum=float(finite.max()))


def _infinite_problems(frame: pd.DataFrame, names: list[str]) -> list[str]:
    """±inf is bad input, never drift: Evidently's report and scikit-learn's estimators fail on it."""
    problems = []
    for name in names:
        if _kind_of(frame[name]) != "numeric":
            continue
        count = int(np.isinf(frame[name].to_numpy(dtype="float64", na_value=np.nan)).sum())
        if count:
            problems.append(f"column {name!r} has {count} infinite values: expected finite numbers")
    return problems


def contract_from_reference(reference: pd.DataFrame, config: Config, source: str) -> DataContract:
    """Draw the contract from the reference window; columns the config names must exist in it."""
    model = config.model
    named = [model.target, *(model.features or []), *(config.drift.columns or [])]
    problems = [
        f"column {name!r} named in the config is missing"
        for name in dict.fromkeys(named)
        if name not in reference.columns
    ]
    if reference.empty:
        problems.append("has no rows: the reference must hold data to learn from")
    if problems:
        raise ContractViolation(source, problems)
    skipped = {model.target, *model.ignore}
    names = model.features or [column for column in reference.columns if column not in skipped]
    if problems := _infinite_problems(reference, names):
        raise ContractViolation(source, problems)
    return DataContract(
        features=tuple(_spec(reference[name], name) for name in names),
        target=model.target,
        ignore=tuple(model.ignore),
        min_rows=config.contract.min_rows,
        max_unseen_category_share=config.contract.max_unseen_category_share,
        max_missing_target_share=config.contract.max_missing_target_share,
        max_out_of_range_share=config.contract.max_out_of_range_share,
        range_margin=config.contract.range_margin,
    )


def contract_for_columns(reference: pd.DataFrame, ignore: list[str], source: str) -> DataContract:
    """A contract with no target over every column but ``ignore``: for ad-hoc drift checks of two files."""
    missing = [name for name in ignore if name not in reference.columns]
    if missing or reference.empty:
        problems = [f"column {name!r} given to --ignore is missing" for name in missing]
        raise ContractViolation(source, problems or ["has no rows: expected reference data"])
    names = [column for column in reference.columns if column not in ignore]
    if problems := _infinite_problems(reference, names):
        raise ContractViolation(source, problems)
    # Two arbitrary files: any new category or value range is the drift the check is asked about.
    return DataContract(
        tuple(_spec(reference[name], name) for name in names), None, tuple(ignore), 1, 1.0, max_out_of_range_share=1.0
    )


def _accepted_range(spec: ColumnSpec, contract: DataContract) -> tuple[float, float]:
    lowest = -np.inf if spec.minimum is None else spec.minimum
    highest = np.inf if spec.maximum is None else spec.maximum
    margin = (highest - lowest) * contract.range_margin if np.isfinite(highest - lowest) else 0.0
    return lowest - margin, highest + margin


def _range_problems(values: pd.Series, spec: ColumnSpec, contract: DataContract) -> list[str]:
    finite = _finite(values)
    low, high = _accepted_range(spec, contract)
    outside = finite[(finite < low) | (finite > high)]
    share = outside.size / finite.size if finite.size else 0.0
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
    values = series.dropna()
    if values.empty:
        return [f"column {spec.name!r} is entirely null: expected {spec.kind} values"]
    if spec.kind == "numeric":
        if _kind_of(series) != "numeric":
            distinct = pd.Series(sorted(categorical.distinct_strings(values)))
            bad = distinct[pd.to_numeric(distinct, errors="coerce").isna()].tolist()[:_EXAMPLES]
            dtype = categorical.value_dtype(series)
            return [(f"column {spec.name!r} has dtype {dtype}: expected numeric values (found e.g. {bad})")]
        return _range_problems(values, spec, contract)
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


def column_set_problems(columns: list[str], contract: DataContract, *, require_target: bool) -> list[str]:
    """The columns missing from ``columns`` (a frame's, or a file's schema's) and those the contract lacks."""
    target = {contract.target} if contract.target else set()
    expected = set(contract.feature_names) | (target if require_target else set())
    allowed = expected | target | set(contract.ignore)
    problems = [f"column {name!r} is missing" for name in sorted(expected - set(columns))]
    return problems + [
        f"column {name!r} is not in the contract: expected only {sorted(allowed)}"
        for name in sorted(set(columns) - allowed)
    ]


def validate_batch(frame: pd.DataFrame, contract: DataContract, source: str, *, require_target: bool) -> None:
    """Raise ``ContractViolation`` listing every way ``frame`` breaks the contract."""
    problems = column_set_problems(list(frame.columns), contract, require_target=require_target)
    if len(frame) < contract.min_rows:
        problems.append(f"has {len(frame)} rows: expected at least {contract.min_rows}")
    elif not problems:
        for spec in contract.features:
            problems += _column_problems(frame[spec.name], spec, contract)
        labels = [contract.target] if require_target and contract.target else []
        problems += _infinite_problems(frame, contract.numerical + labels)
        if labels:
            problems += _missing_target_problems(frame, contract)
    if problems:
        raise ContractViolation(source, problems)


def _missing_target_problems(frame: pd.DataFrame, contract: DataContract) -> list[str]:
    missing = frame[contract.target].isna()
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
            f"{len(frame)}): expected at most {contract.max_missing_target_share:.1%}"
        )
    ]


def drop_unlabelled(frame: pd.DataFrame, contract: DataContract, source: str) -> tuple[pd.DataFrame, int]:
    """Drop the rows without a target before training (scikit-learn rejects a NaN label).

    Returns the labelled rows (index reset) and how many were dropped; raises ``ContractViolation`` when
    more than ``max_missing_target_share`` of the rows have no target, or the target column is absent.
    """
    if contract.target is None:
        raise ContractViolation(source, ["has no target in its contract: expected a model's contract"])
    if contract.target not in frame.columns:
        raise ContractViolation(source, [f"column {contract.target!r} (the target) is missing"])
    if problems := _missing_target_problems(frame, contract):
        raise ContractViolation(source, problems)
    labelled = frame[frame[contract.target].notna()].reset_index(drop=True)
    return labelled, len(frame) - len(labelled)


def conform(frame: pd.DataFrame, contract: DataContract) -> pd.DataFrame:
    """Give every feature the kind the contract says: categories as strings (a Categorical of strings stays
    one), numbers as floats. Columns that already fit are shared with ``frame``, not copied (assigning a
    column to a frame copies it: the frame is built from its columns instead)."""
    columns = {name: frame[name] for name in frame.columns}
    for spec in contract.features:
        column = columns[spec.name]
        numeric = spec.kind == "numeric"
        columns[spec.name] = column.astype("float64", copy=False) if numeric else categorical.as_strings(column)
    return pd.DataFrame(columns, copy=False)


def _spec_to_dict(spec: ColumnSpec) -> dict[str, object]:
    item: dict[str, object] = {"name": spec.name, "kind": spec.kind, "categories": sorted(spec.categories)}
    if spec.kind == "numeric":
        item |= {"min": spec.minimum, "max": spec.maximum}
    return item


def contract_to_dict(contract: DataContract) -> dict[str, object]:
    """A JSON form kept with each trained model, so scoring needs no access to the training data."""
    return {
        "features": [_spec_to_dict(spec) for spec in contract.features],
        "target": contract.target,
        "ignore": list(contract.ignore),
        "min_rows": contract.min_rows,
        "max_unseen_category_share": contract.max_unseen_category_share,
        "max_missing_target_share": contract.max_missing_target_share,
        "max_out_of_range_share": contract.max_out_of_range_share,
        "range_margin": contract.range_margin,
    }


def _optional_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def contract_from_dict(payload: dict[str, object]) -> DataContract:
    """Read a stored contract; keys added since it was stored take their defaults (ranges: unbounded)."""
    features = tuple(
        ColumnSpec(
            item["name"],
            item["kind"],
            frozenset(item["categories"]),
            _optional_float(item.get("min")),
            _optional_float(item.get("max")),
        )
        for item in payload["features"]  # type: ignore[union-attr]
    )
    added_later = ("max_missing_target_share", "max_out_of_range_share", "range_margin")
    return DataContract(
        features=features,
        target=payload["target"],  # type: ignore[arg-type]
        ignore=tuple(payload["ignore"]),  # type: ignore[arg-type]
        min_rows=int(payload["min_rows"]),  # type: ignore[arg-type]
        max_unseen_category_share=float(payload["max_unseen_category_share"]),  # type: ignore[arg-type]
        **{key: float(payload[key]) for key in added_later if key in payload},  # type: ignore[arg-type]
    )
