"""Ad-hoc drift check of two files, with no model config: what ``driftloop drift`` runs.

Parquet files are checked a few columns at a time: each group of columns is read from both sides, its
contract drawn and checked, its drift tests run, and then let go of, so memory holds a few columns, not
two whole tables. Other files (csv), and a check asked to draw its report, read both tables whole.
"""

from __future__ import annotations

import os

from service.contracts import (
    ColumnSpec,
    DataContract,
    column_set_problems,
    conform,
    contract_for_columns,
    validate_batch,
)
from service.data import list_batches, parquet_columns, read_window
from service.drift.check import check_drift
from service.drift.result import ColumnDrift, DriftResult
from service.errors import ConfigError, ContractViolation
from service.settings import DriftSection


def check_files(
    reference_uri: str, current_uri: str, ignore: list[str], settings: DriftSection, *, with_report: bool = False
) -> DriftResult:
    """Compare every column but ``ignore``; column kinds are taken from the reference. ``with_report``
    draws Evidently's HTML report into the result (it imports Evidently: seconds)."""
    references, currents = list_batches(reference_uri), list_batches(current_uri)
    if settings.engine == "dask":  # the cluster's workers read the files: nothing is read here
        return _check_on_dask(references, currents, (reference_uri, current_uri), ignore, with_report, settings)
    names, current_names = parquet_columns(references), parquet_columns(currents)
    if with_report or names is None or current_names is None:
        return _check_tables(references, currents, reference_uri, current_uri, ignore, settings, with_report)
    return _check_by_columns(references, currents, names, current_names, (reference_uri, current_uri), ignore, settings)


def _check_tables(
    references: list[str],
    currents: list[str],
    reference_uri: str,
    current_uri: str,
    ignore: list[str],
    settings: DriftSection,
    with_report: bool,
) -> DriftResult:
    # Parquet strings are read as categories: the check needs their counts, not a string per row.
    reference = read_window(references, categories=True)
    contract = contract_for_columns(reference, ignore, reference_uri)
    current = read_window(currents, categories=True)
    validate_batch(current, contract, current_uri, require_target=False)
    return check_drift(
        conform(reference, contract),
        conform(current, contract),
        numerical=contract.numerical,
        categorical=contract.categorical,
        settings=settings,
        with_report=with_report,
    )


def _check_by_columns(
    references: list[str],
    currents: list[str],
    names: list[str],
    current_names: list[str],
    sources: tuple[str, str],
    ignore: list[str],
    settings: DriftSection,
) -> DriftResult:
    reference_uri, current_uri = sources
    if missing := [name for name in ignore if name not in names]:
        raise ContractViolation(reference_uri, [f"column {name!r} given to --ignore is missing" for name in missing])
    checked_names = [name for name in names if name not in ignore]
    # The column sets are compared from the schemas, before any data is read; only names matter here.
    by_name = DataContract(tuple(ColumnSpec(name, "numeric") for name in checked_names), None, tuple(ignore), 1, 1.0)
    if problems := column_set_problems(current_names, by_name, require_target=False):
        raise ContractViolation(current_uri, problems)
    problems_of: dict[str, list[str]] = {reference_uri: [], current_uri: []}
    checked: list[ColumnDrift] = []
    numerical: list[str] = []
    rows = (0, 0)
    # As many columns at a time as check_drift tests side by side: one per core.
    size = os.cpu_count() or 1
    for group in (checked_names[start : start + size] for start in range(0, len(checked_names), size)):
        reference = read_window(references, categories=True, columns=group)
        try:
            contract = contract_for_columns(reference, [], reference_uri)
        except ContractViolation as exc:
            problems_of[reference_uri] += exc.problems
            continue
        if problems_of[reference_uri]:
            continue  # the reference is refused: the batch is not read (as a whole-table check does)
        current = read_window(currents, categories=True, columns=group)
        try:
            validate_batch(current, contract, current_uri, require_target=False)
        except ContractViolation as exc:
            problems_of[current_uri] += exc.problems
            continue
        result = check_drift(
            conform(reference, contract),
            conform(current, contract),
            numerical=contract.numerical,
            categorical=contract.categorical,
            settings=settings,
        )
        checked += result.columns
        numerical += contract.numerical
        rows = (result.n_reference, result.n_current)
        del reference, current  # before the next group is read, not after
    for source, problems in problems_of.items():
        if problems:  # a problem of the whole file (no rows) is found once per group: say it once
            raise ContractViolation(source, list(dict.fromkeys(problems)))
    # Numerical columns first, then categorical ones, as a check of the whole tables lists them.
    ordered = sorted(checked, key=lambda column: column.column not in numerical)
    return DriftResult.of_columns(tuple(ordered), settings.drift_share, *rows)


def _check_on_dask(
    references: list[str],
    currents: list[str],
    sources: tuple[str, str],
    ignore: list[str],
    with_report: bool,
    settings: DriftSection,
) -> DriftResult:
    from service.drift.dask_engine import check_on_dask  # imports dask: only for this engine

    if with_report:  # drawing it would read both tables here, what the cluster is for
        raise ConfigError("--report is drawn by the fast and evidently engines, not by --engine dask")
    return check_on_dask(references, currents, settings, ignore=ignore, sources=sources)
