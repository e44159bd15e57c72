"""The data contract of a model: which columns, of which kind, with which categories, how many rows.

A contract is drawn from the reference window (the champion's training data) and the config, and every
batch is checked against it before anything else happens: a bad batch stops the run with an error that
names the file and column, before a model is trained or an alias is moved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from service.errors import ContractViolation
from service.settings import Config

ColumnKind = Literal["numeric", "categorical"]
_EXAMPLES = 3


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: ColumnKind
    categories: frozenset[str] = frozenset()


@dataclass(frozen=True)
class DataContract:
    features: tuple[ColumnSpec, ...]
    target: str | None  # None for ad-hoc checks of unlabeled files
    ignore: tuple[str, ...]
    min_rows: int
    max_unseen_category_share: float

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


def _specs(reference: pd.DataFrame, names: list[str]) -> tuple[ColumnSpec, ...]:
    specs = []
    for name in names:
        kind = _kind_of(reference[name])
        categories = frozenset(reference[name].dropna().astype(str)) if kind == "categorical" else frozenset()
        specs.append(ColumnSpec(name, kind, categories))
    return tuple(specs)


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
    return DataContract(
        features=_specs(reference, names),
        target=model.target,
        ignore=tuple(model.ignore),
        min_rows=config.contract.min_rows,
        max_unseen_category_share=config.contract.max_unseen_category_share,
    )


def contract_for_columns(reference: pd.DataFrame, ignore: list[str], source: str) -> DataContract:
    """A contract with no target over every column but ``ignore``: for ad-hoc drift checks of two files."""
    missing = [name for name in ignore if name not in reference.columns]
    if missing or reference.empty:
        problems = [f"column {name!r} given to --ignore is missing" for name in missing]
        raise ContractViolation(source, problems or ["has no rows: expected reference data"])
    names = [column for column in reference.columns if column not in ignore]
    return DataContract(_specs(reference, names), None, tuple(ignore), 1, 1.0)


def _column_problems(series: pd.Series, spec: ColumnSpec, contract: DataContract) -> list[str]:
    values = series.dropna()
    if values.empty:
        return [f"column {spec.name!r} is entirely null: expected {spec.kind} values"]
    if spec.kind == "numeric":
        if _kind_of(series) != "numeric":
            bad = values[pd.to_numeric(values, errors="coerce").isna()].astype(str).unique()[:_EXAMPLES]
            return [
                (f"column {spec.name!r} has dtype {series.dtype}: expected numeric values (found e.g. {list(bad)})")
            ]
        return []
    unseen = values.astype(str)[~values.astype(str).isin(spec.categories)]
    share = len(unseen) / len(values)
    if share > contract.max_unseen_category_share:
        examples = sorted(unseen.unique())[:_EXAMPLES]
        return [
            (
                f"column {spec.name!r} has {share:.1%} values not seen in the reference (e.g. {examples}): "
                f"expected at most {contract.max_unseen_category_share:.1%}"
            )
        ]
    return []


def validate_batch(frame: pd.DataFrame, contract: DataContract, source: str, *, require_target: bool) -> None:
    """Raise ``ContractViolation`` listing every way ``frame`` breaks the contract."""
    target = {contract.target} if contract.target else set()
    expected = set(contract.feature_names) | (target if require_target else set())
    allowed = expected | target | set(contract.ignore)
    problems = [f"column {name!r} is missing" for name in sorted(expected - set(frame.columns))]
    problems += [
        f"column {name!r} is not in the contract: expected only {sorted(allowed)}"
        for name in sorted(set(frame.columns) - allowed)
    ]
    if len(frame) < contract.min_rows:
        problems.append(f"has {len(frame)} rows: expected at least {contract.min_rows}")
    elif not problems:
        for spec in contract.features:
            problems += _column_problems(frame[spec.name], spec, contract)
        if require_target and contract.target and frame[contract.target].isna().all():
            problems.append(f"column {contract.target!r} (the target) is entirely null")
    if problems:
        raise ContractViolation(source, problems)


def conform(frame: pd.DataFrame, contract: DataContract) -> pd.DataFrame:
    """Give every feature the kind the contract says: categories as strings, numbers as floats."""
    out = frame.copy()
    for spec in contract.features:
        if spec.kind == "numeric":
            out[spec.name] = out[spec.name].astype("float64")
        else:
            column = out[spec.name]
            out[spec.name] = column.astype(str).where(column.notna(), None)
    return out


def contract_to_dict(contract: DataContract) -> dict[str, object]:
    """A JSON form kept with each trained model, so scoring needs no access to the training data."""
    return {
        "features": [
            {"name": spec.name, "kind": spec.kind, "categories": sorted(spec.categories)} for spec in contract.features
        ],
        "target": contract.target,
        "ignore": list(contract.ignore),
        "min_rows": contract.min_rows,
        "max_unseen_category_share": contract.max_unseen_category_share,
    }


def contract_from_dict(payload: dict[str, object]) -> DataContract:
    features = tuple(
        ColumnSpec(item["name"], item["kind"], frozenset(item["categories"]))
        for item in payload["features"]  # type: ignore[union-attr]
    )
    return DataContract(
        features=features,
        target=payload["target"],  # type: ignore[arg-type]
        ignore=tuple(payload["ignore"]),  # type: ignore[arg-type]
        min_rows=int(payload["min_rows"]),  # type: ignore[arg-type]
        max_unseen_category_share=float(payload["max_unseen_category_share"]),  # type: ignore[arg-type]
    )
