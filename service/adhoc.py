"""Ad-hoc drift check of two files, with no model config: what ``driftloop drift`` runs.

Both sides are read a column at a time (``service.columns``; a csv file is streamed once into a spill):
for each column the reference's spec is drawn, the batch's column checked against it, both sides prepared
and tested, and then let go of, so memory holds a column per thread, not two whole tables. A check asked
to draw its report, or run by Evidently's engine, reads both tables whole (Evidently takes frames).
"""

from __future__ import annotations

from service.column_check import each_column
from service.column_rules import Findings, column_findings, infinite_problems, ordered_problems
from service.columns import ColumnTable
from service.contracts import (
    ColumnSpec,
    DataContract,
    column_spec,
    conform,
    conform_column,
    contract_for_columns,
    schema_problems,
    validate_batch,
)
from service.data import list_batches, read_window
from service.drift import stats as drift_stats
from service.drift.check import check_drift, checks_by_column, column_verdict
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
    if with_report or not checks_by_column(settings):
        return _check_tables(references, currents, reference_uri, current_uri, ignore, settings, with_report)
    with ColumnTable(references) as reference:
        if problems := _reference_problems(reference, ignore):  # from its schema: the batch is not read
            raise ContractViolation(reference_uri, problems)
        with ColumnTable(currents) as current:
            return _check_by_columns(reference, current, (reference_uri, current_uri), ignore, settings)


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


def _reference_problems(reference: ColumnTable, ignore: list[str]) -> list[str]:
    # As contract_for_columns says them of a whole frame.
    if missing := [name for name in ignore if name not in reference.names]:
        return [f"column {name!r} given to --ignore is missing" for name in missing]
    return [] if reference.num_rows else ["has no rows: expected reference data"]


def _check_by_columns(
    reference: ColumnTable, current: ColumnTable, sources: tuple[str, str], ignore: list[str], settings: DriftSection
) -> DriftResult:
    reference_uri, current_uri = sources
    names = [name for name in reference.names if name not in ignore]
    # The column sets and the batch's rows are compared from the schemas, before any data is read.
    by_name = DataContract(tuple(ColumnSpec(name, "numeric") for name in names), None, tuple(ignore), 1, 1.0)
    problems, _ = schema_problems(current.names, current.num_rows, by_name, require_target=False)
    if problems:
        raise ContractViolation(current_uri, problems)

    def visit(_: int, name: str) -> tuple[list[str], Findings, ColumnDrift | None, ColumnSpec]:
        column = reference.column(name)
        spec = column_spec(column, name)
        if refused := infinite_problems(column, name):
            return refused, ([], [], []), None, spec
        reference_side = drift_stats.prepare(conform_column(column, spec.kind), spec.kind == "numeric", owned=True)
        del column  # before the batch's column is read: the prepared side is what the test needs
        column = current.column(name)
        findings = column_findings(column, name, _contract((spec,), ignore), require_target=False)
        if any(findings):
            return [], findings, None, spec
        side = drift_stats.prepare(conform_column(column, spec.kind), spec.kind == "numeric", owned=True)
        del column
        return [], findings, column_verdict(name, reference_side, side, settings), spec

    outcomes = each_column(names, visit)
    if problems := [problem for refused, *_ in outcomes for problem in refused]:
        raise ContractViolation(reference_uri, problems)
    contract = _contract(tuple(spec for *_, spec in outcomes), ignore)
    findings = {spec.name: found for _, found, _, spec in outcomes}
    if problems := ordered_problems(findings, contract, require_target=False):
        raise ContractViolation(current_uri, problems)
    # Numerical columns first, then categorical ones, as a check of the whole tables lists them.
    verdicts = {spec.name: verdict for _, _, verdict, spec in outcomes}
    checked = tuple(verdicts[name] for name in [*contract.numerical, *contract.categorical])
    return DriftResult.of_columns(checked, settings.drift_share, reference.num_rows, current.num_rows)  # type: ignore[arg-type]


def _contract(specs: tuple[ColumnSpec, ...], ignore: list[str]) -> DataContract:
    # Two arbitrary files: any new category or value range is the drift the check is asked about.
    return DataContract(specs, None, tuple(ignore), 1, 1.0, max_out_of_range_share=1.0)


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
