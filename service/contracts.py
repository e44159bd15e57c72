"""The data contract of a model: which columns, of which kind, with which categories or ranges, how many rows.

A contract is drawn from the reference window (the champion's training data) and the config, and every
batch is checked against it before anything else happens: a bad batch stops the run with an error that
names the file and column, before a model is trained or an alias is moved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

from service import categorical
from service.column_rules import (
    column_findings,
    finite_values,
    infinite_problems,
    kind_of,
    missing_target_problems,
    ordered_problems,
)
from service.errors import ContractViolation
from service.settings import Config

ColumnKind = Literal["numeric", "categorical"]


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


def column_spec(series: pd.Series, name: str) -> ColumnSpec:
    """A feature's spec drawn from the reference's column: its kind, its categories or finite range."""
    if kind_of(series) == "categorical":
        return ColumnSpec(name, "categorical", categorical.distinct_strings(series))
    finite = finite_values(series)
    if finite.size == 0:
        return ColumnSpec(name, "numeric")
    return ColumnSpec(name, "numeric", minimum=float(finite.min()), maximum=float(finite.max()))


def _infinite_problems(frame: pd.DataFrame, names: list[str]) -> list[str]:
    return [problem for name in names for problem in infinite_problems(frame[name], name)]


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
        features=tuple(column_spec(reference[name], name) for name in names),
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
        tuple(column_spec(reference[name], name) for name in names),
        None,
        tuple(ignore),
        1,
        1.0,
        max_out_of_range_share=1.0,
    )


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
    problems, names = schema_problems(list(frame.columns), len(frame), contract, require_target=require_target)
    findings = {name: column_findings(frame[name], name, contract, require_target=require_target) for name in names}
    if problems := problems or ordered_problems(findings, contract, require_target=require_target):
        raise ContractViolation(source, problems)


# A batch is validated from its column names and row count first (a file's schema holds both), then
# column by column (``column_findings``), so a batch read a column at a time is checked as a whole frame is.


def schema_problems(
    columns: list[str], rows: int, contract: DataContract, *, require_target: bool
) -> tuple[list[str], list[str]]:
    """The problems of the column set and row count; with none, the columns to check one by one."""
    problems = column_set_problems(columns, contract, require_target=require_target)
    if rows < contract.min_rows:
        problems.append(f"has {rows} rows: expected at least {contract.min_rows}")
    labels = [contract.target] if require_target and contract.target else []
    return problems, [] if problems else list(dict.fromkeys([*contract.feature_names, *labels]))


def drop_unlabelled(frame: pd.DataFrame, contract: DataContract, source: str) -> tuple[pd.DataFrame, int]:
    """Drop the rows without a target before training (scikit-learn rejects a NaN label).

    Returns the labelled rows (index reset) and how many were dropped; raises ``ContractViolation`` when
    more than ``max_missing_target_share`` of the rows have no target, or the target column is absent.
    """
    if contract.target is None:
        raise ContractViolation(source, ["has no target in its contract: expected a model's contract"])
    if contract.target not in frame.columns:
        raise ContractViolation(source, [f"column {contract.target!r} (the target) is missing"])
    if problems := missing_target_problems(frame[contract.target], contract):
        raise ContractViolation(source, problems)
    labelled = frame[frame[contract.target].notna()].reset_index(drop=True)
    return labelled, len(frame) - len(labelled)


def conform(frame: pd.DataFrame, contract: DataContract) -> pd.DataFrame:
    """Give every feature the kind the contract says: categories as strings (a Categorical of strings stays
    one), numbers as floats. Columns that already fit are shared with ``frame``, not copied (assigning a
    column to a frame copies it: the frame is built from its columns instead)."""
    columns = {name: frame[name] for name in frame.columns}
    for spec in contract.features:
        columns[spec.name] = conform_column(columns[spec.name], spec.kind)
    return pd.DataFrame(columns, copy=False)


def conform_column(column: pd.Series, kind: ColumnKind) -> pd.Series:
    return column.astype("float64", copy=False) if kind == "numeric" else categorical.as_strings(column)


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
