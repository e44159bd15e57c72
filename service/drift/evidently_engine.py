"""The reference engine: Evidently's ``DataDriftPreset`` report with its tests, and its HTML.

Verdicts are read from Evidently's *test results* (FAIL = drifted), not re-derived from raw scores.
Evidently is imported here only, lazily, because importing it takes seconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from service.categorical import as_object_strings
from service.drift.result import ColumnDrift, DriftResult, check_stattest_fits
from service.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from service.settings import DriftSection


def evidently_check(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    numerical: list[str],
    categorical: list[str],
    settings: DriftSection,
) -> DriftResult:
    """Check ``current`` against ``reference``; only the given numerical + categorical columns are checked.

    Other columns are ignored. ``settings.columns`` is not read here: the caller resolves which columns
    to check and of which kind. Raises ``ConfigError`` naming the columns ``settings.stattest`` cannot test.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.legacy.calculations.stattests import get_stattest
    from evidently.legacy.tests.base_test import TestStatus
    from evidently.metrics import DriftedColumnsCount, ValueDrift
    from evidently.presets import DataDriftPreset

    columns = [*numerical, *categorical]
    if not columns or len(set(columns)) != len(columns):
        raise ValueError(f"need distinct columns to check: numerical={numerical}, categorical={categorical}")
    check_stattest_fits(settings.stattest, numerical, categorical)

    # The metric config records the name the user gave ("psi") when the test was configured, but the
    # display name ("K-S p_value") when Evidently chose it; map ours to the display name so that
    # ColumnDrift.stattest always uses one vocabulary. Doing it before the run also fails fast on a typo.
    display_names: dict[str, str] = {}
    if settings.stattest is not None:
        for kind, names in (("num", numerical), ("cat", categorical)):
            if names:
                try:
                    test = get_stattest(reference[names[0]], current[names[0]], kind, settings.stattest)
                except ValueError as exc:
                    raise ConfigError(f"drift.stattest: {exc}") from None
                display_names.update(dict.fromkeys(names, test.display_name))

    # Every column list is given explicitly (empty ones too): a list left at None makes Evidently infer
    # the types of the remaining columns, and a categorical integer column would be tested as numerical.
    definition = DataDefinition(
        numerical_columns=list(numerical),
        categorical_columns=list(categorical),
        text_columns=[],
        datetime_columns=[],
        unknown_columns=[],
        list_columns=[],
    )
    preset = DataDriftPreset(
        columns=columns,
        drift_share=settings.drift_share,
        method=settings.stattest,  # None: Evidently picks per column type and reference size
        threshold=settings.stattest_threshold,  # None: the chosen test's default threshold
    )
    # Categoricals (parquet strings read as categories) are given to Evidently as the object strings it
    # was always given: this engine is the reference, not the fast path.
    snapshot = Report([preset], include_tests=True).run(
        current_data=Dataset.from_pandas(as_object_strings(current[columns]), data_definition=definition),
        reference_data=Dataset.from_pandas(as_object_strings(reference[columns]), data_definition=definition),
    )

    # The preset yields one DriftedColumnsCount metric (its default test with reference data is
    # "share of drifted columns < drift_share", so FAIL = dataset drift) and one ValueDrift metric per
    # column (its "drift" test is FAIL when that column drifted). Each test result names its metric.
    per_column: dict[str, ColumnDrift] = {}
    dataset_status = None
    counted: Any = None
    for test in snapshot.tests_results:
        if test.status not in (TestStatus.FAIL, TestStatus.SUCCESS):
            raise RuntimeError(f"Evidently test {test.name!r} ended {test.status.value}: {test.description}")
        metric_id = test.metric_config.metric_id
        metric = snapshot.context.get_metric(metric_id).to_metric()
        if isinstance(metric, ValueDrift):
            params = test.metric_config.params  # holds the method/threshold Evidently resolved
            per_column[metric.column] = ColumnDrift(
                column=metric.column,
                stattest=display_names.get(metric.column, str(params["method"])),
                score=float(snapshot.metric_results[metric_id].value),
                threshold=float(params["threshold"]),
                drifted=test.status == TestStatus.FAIL,
            )
        elif isinstance(metric, DriftedColumnsCount):
            dataset_status = test.status
            counted = snapshot.metric_results[metric_id]

    if dataset_status is None or sorted(per_column) != sorted(columns):
        raise RuntimeError(
            f"Evidently returned drift tests for {sorted(per_column)} and dataset test "
            f"{dataset_status}; expected one per column of {sorted(columns)} and a dataset test"
        )
    checked = tuple(per_column[name] for name in columns)
    share = float(counted.share.value)
    # Cross-check: DriftedColumnsCount is computed by a separate (legacy) code path; its count must equal
    # the failed per-column tests, and the dataset verdict must match share >= drift_share.
    n_failed = sum(c.drifted for c in checked)
    dataset_drift = dataset_status == TestStatus.FAIL
    if int(counted.count.value) != n_failed or dataset_drift != (share >= settings.drift_share):
        raise RuntimeError(
            f"inconsistent Evidently drift results: {n_failed} column tests failed but "
            f"DriftedColumnsCount is {counted.count.value} (share {share}); dataset test {dataset_status} "
            f"with drift_share {settings.drift_share}"
        )

    return DriftResult(
        dataset_drift=dataset_drift,
        drifted_share=share,
        drift_share_threshold=settings.drift_share,
        columns=checked,
        n_reference=len(reference),
        n_current=len(current),
        html=snapshot.get_html_str(as_iframe=False),
    )
