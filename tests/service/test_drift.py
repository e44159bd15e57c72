"""Tests of service.drift.check_drift on small synthetic frames (seeded, so every run sees the same data)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from service import adhoc
from service.drift.check import check_drift
from service.drift.result import DriftResult
from service.errors import ConfigError, ContractViolation
from service.settings import DriftSection

NUMERICAL = ["age", "income", "score", "tenure"]
CATEGORICAL = ["city", "plan"]
CITY_PROBS = (0.5, 0.3, 0.2)
# Under no drift, Evidently's small-sample tests (up to 1000 reference rows) raise false alarms often:
# measured over 60 seed pairs at 500 rows, K-S flagged ~6% of numerical columns but chi-square flagged
# city in ~23% of batches (it takes the reference counts as the true distribution), and about half the
# batches had at least one drifted column. This seed pair gives none at the sizes used here, so that a
# test expecting "exactly these columns" fails only for a real reason.
REF_SEED, CUR_SEED = 11, 12


def make_frame(
    n: int, seed: int, shift: dict[str, float] | None = None, city_probs: tuple[float, ...] = CITY_PROBS
) -> pd.DataFrame:
    """4 numerical + 2 categorical features and an unchecked ``note`` column.

    ``shift`` moves a numerical column's mean by that many of its standard deviations.
    """
    rng = np.random.default_rng(seed)
    shift = shift or {}
    return pd.DataFrame(
        {
            "age": rng.normal(40, 10, n) + 10 * shift.get("age", 0.0),
            "income": rng.normal(3000, 800, n) + 800 * shift.get("income", 0.0),
            "score": rng.normal(0, 1, n) + shift.get("score", 0.0),
            "tenure": rng.integers(0, 121, n) + round(35 * shift.get("tenure", 0.0)),
            "city": rng.choice(["paris", "lyon", "nice"], n, p=city_probs),
            "plan": rng.choice(["basic", "pro"], n, p=(0.7, 0.3)),
            "note": rng.choice(["x", "y"], n),  # not a feature: must never be checked
        }
    )


def run(reference: pd.DataFrame, current: pd.DataFrame, **drift: object) -> DriftResult:
    return check_drift(reference, current, numerical=NUMERICAL, categorical=CATEGORICAL, settings=DriftSection(**drift))


@pytest.mark.parametrize(
    ("n", "num_test", "cat_tests"),
    [
        # Evidently picks p-value tests for a reference of <= 1000 rows, distances above that.
        (500, "K-S p_value", {"city": "chi-square p_value", "plan": "Z-test p_value"}),
        (1500, "Wasserstein distance (normed)", dict.fromkeys(CATEGORICAL, "Jensen-Shannon distance")),
    ],
)
def test_same_distribution_does_not_drift(n: int, num_test: str, cat_tests: dict[str, str]) -> None:
    # given: a batch drawn from the reference's distribution
    reference, current = make_frame(n, seed=REF_SEED), make_frame(n, seed=CUR_SEED)
    # when
    result = run(reference, current)
    # then: no dataset drift, at most one false alarm, and Evidently's default tests were used
    assert result.dataset_drift is False
    assert len(result.drifted_columns()) <= 1
    assert result.drifted_share == len(result.drifted_columns()) / 6
    assert {c.column: c.stattest for c in result.columns} == dict.fromkeys(NUMERICAL, num_test) | cat_tests
    assert (result.n_reference, result.n_current) == (n, n)


def test_strong_shift_in_most_columns_drifts_the_dataset() -> None:
    # given: four of six columns moved far
    shifted = {"age": 2.0, "income": 2.0, "score": 2.0, "tenure": 2.0}
    reference, current = make_frame(1500, seed=REF_SEED), make_frame(1200, seed=CUR_SEED, shift=shifted)
    # when
    result = run(reference, current)
    # then: exactly the shifted columns are flagged, and the dataset drifts
    assert result.dataset_drift is True
    assert result.drifted_columns() == list(shifted)
    assert result.drifted_share == pytest.approx(4 / 6)
    assert result.drift_share_threshold == 0.5


def test_shift_in_one_column_flags_only_that_column() -> None:
    # given: only `score` moved, with the default drift_share of 0.5
    reference, current = (
        make_frame(1500, seed=REF_SEED),
        make_frame(1500, seed=CUR_SEED, shift={"score": 1.0}),
    )
    # when
    result = run(reference, current, drift_share=0.5)
    # then
    assert result.drifted_columns() == ["score"]
    assert result.dataset_drift is False
    assert result.drifted_share == pytest.approx(1 / 6)


def test_lower_drift_share_turns_one_drifted_column_into_dataset_drift() -> None:
    # given: the same one-column shift, but any drifted column is enough (1/6 >= 0.1)
    reference, current = (
        make_frame(1500, seed=REF_SEED),
        make_frame(1500, seed=CUR_SEED, shift={"score": 1.0}),
    )
    # when
    result = run(reference, current, drift_share=0.1)
    # then
    assert result.dataset_drift is True
    assert result.drift_share_threshold == 0.1


@pytest.mark.parametrize("n", [500, 1500])
def test_category_frequency_change_is_detected(n: int) -> None:
    # given: a control batch, and the same batch with the city frequencies reversed
    reference = make_frame(n, seed=REF_SEED)
    control = make_frame(n, seed=CUR_SEED)
    changed = make_frame(n, seed=CUR_SEED, city_probs=(0.2, 0.3, 0.5))
    # when
    before, after = run(reference, control), run(reference, changed)
    # then: only the frequency change makes city drift
    assert before.drifted_columns() == []
    assert after.drifted_columns() == ["city"]
    city = next(c for c in after.columns if c.column == "city")
    assert city.stattest == ("chi-square p_value" if n <= 1000 else "Jensen-Shannon distance")


def test_configured_stattest_and_threshold_are_used_for_every_column() -> None:
    # given: PSI with a threshold of 0.2 and one strongly shifted column
    reference, current = make_frame(800, seed=REF_SEED), make_frame(800, seed=CUR_SEED, shift={"income": 2.0})
    # when
    result = run(reference, current, stattest="psi", stattest_threshold=0.2)
    # then: PSI (Evidently's display name) and 0.2 are reported for all columns, and PSI flags income
    assert {c.stattest for c in result.columns} == {"PSI"}
    assert {c.threshold for c in result.columns} == {0.2}
    assert result.drifted_columns() == ["income"]
    assert all(c.drifted == (c.score >= c.threshold) for c in result.columns)  # PSI drifts when >= threshold


def test_threshold_alone_overrides_the_default_tests_threshold() -> None:
    # given: no stattest; a large reference, so every default test is a distance (drift when >= threshold),
    # and a half-sd shift of score that the default Wasserstein threshold of 0.1 flags
    reference, current = (
        make_frame(1500, seed=REF_SEED),
        make_frame(1500, seed=CUR_SEED, shift={"score": 0.5}),
    )
    assert run(reference, current).drifted_columns() == ["score"]
    # when: the threshold is raised above that shift's normed Wasserstein distance (about 0.5)
    result = run(reference, current, stattest_threshold=0.9)
    # then
    assert {c.threshold for c in result.columns} == {0.9}
    assert result.drifted_columns() == []


def test_unknown_stattest_is_rejected_before_any_check() -> None:
    # given / when: a typo in drift.stattest, caught as the settings are built (load_config turns this
    # into a ConfigError naming the file: see test_settings)
    with pytest.raises(ValidationError) as caught:
        DriftSection(stattest="pssi")
    # then
    assert "drift.stattest 'pssi' is not an Evidently stattest: expected one of [" in str(caught.value)


@pytest.mark.parametrize("engine", ["fast", "evidently"])
@pytest.mark.parametrize(
    ("stattest", "misfits"),
    [
        ("ks", "categorical column 'city', categorical column 'plan'"),
        ("chisquare", "numerical column 'age', numerical column 'income'"),
    ],
)
def test_stattest_that_cannot_test_a_columns_kind_is_a_config_error_naming_column_and_stattest(
    engine: str, stattest: str, misfits: str
) -> None:
    # given: a numerical-only test on categorical columns, or the reverse
    reference, current = make_frame(200, seed=REF_SEED), make_frame(200, seed=CUR_SEED)
    # when
    with pytest.raises(ConfigError) as caught:
        check_drift(
            reference,
            current,
            numerical=["age", "income"],
            categorical=["city", "plan"],
            settings=DriftSection(stattest=stattest, engine=engine),
        )
    # then: named before anything is computed, with the tests that fit both kinds
    assert str(caught.value) == (
        f"drift.stattest {stattest!r} cannot test {misfits}: choose a stattest for both kinds "
        "(hellinger, jensenshannon, kl_div, psi) or leave drift.stattest unset for Evidently's choice per column"
    )


def test_stattest_fitting_every_checked_column_kind_is_accepted() -> None:
    # given: ks, numerical only, asked of numerical columns only
    reference, current = make_frame(200, seed=REF_SEED), make_frame(200, seed=CUR_SEED)
    # when
    result = check_drift(reference, current, numerical=NUMERICAL, categorical=[], settings=DriftSection(stattest="ks"))
    # then
    assert {c.stattest for c in result.columns} == {"K-S p_value"}


def test_stattest_names_known_to_driftloop_are_evidentlys_registry() -> None:
    # given: Evidently's own registry of stattests and the column kinds each accepts
    from evidently.legacy.calculations.stattests import registry

    kinds = {name: frozenset(kind.value for kind in tests) for name, tests in registry._registered_stat_tests.items()}
    # when: driftloop checks numerical and categorical columns, never text ones
    theirs = {name: kind for name, kind in kinds.items() if kind & {"num", "cat"}}
    # then: the static copy that keeps config loading light has not fallen behind
    assert DriftSection.STATTEST_KINDS == theirs
    assert {kind for name, kind in kinds.items() if name not in theirs} == {frozenset({"text"})}


def write_csv(frame: pd.DataFrame, path: Path) -> str:
    frame.to_csv(path, index=False)
    return str(path)


def test_infinite_values_are_rejected_as_bad_input_before_any_drift_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a batch file whose income holds -inf and inf, and a drift check that must not be reached
    reference = make_frame(300, seed=REF_SEED)
    current = make_frame(300, seed=CUR_SEED)
    current.loc[:2, "income"] = [np.inf, -np.inf, np.inf]
    reached: list[str] = []
    monkeypatch.setattr(adhoc, "check_drift", lambda *args, **kwargs: reached.append("check_drift"))
    # when
    with pytest.raises(ContractViolation) as caught:
        adhoc.check_files(
            write_csv(reference, tmp_path / "reference.csv"),
            write_csv(current, tmp_path / "current.csv"),
            [],
            DriftSection(),
        )
    # then: a contract violation naming the file and the column, never a drift verdict
    assert caught.value.source == str(tmp_path / "current.csv")
    assert caught.value.problems == ["column 'income' has 3 infinite values: expected finite numbers"]
    assert reached == []


def test_to_dict_is_json_and_html_is_a_full_page() -> None:
    # given
    reference, current = make_frame(300, seed=REF_SEED), make_frame(300, seed=CUR_SEED, shift={"age": 2.0})
    # when
    result = check_drift(
        reference, current, numerical=NUMERICAL, categorical=CATEGORICAL, settings=DriftSection(), with_report=True
    )
    payload = json.loads(json.dumps(result.to_dict()))
    # then: the summary round-trips through JSON without the HTML, which is a standalone page
    assert set(payload) == {
        "dataset_drift",
        "drifted_share",
        "drift_share_threshold",
        "n_reference",
        "n_current",
        "columns",
    }
    assert [c["column"] for c in payload["columns"]] == NUMERICAL + CATEGORICAL
    assert set(payload["columns"][0]) == {"column", "stattest", "score", "threshold", "drifted"}
    assert payload["columns"][0]["drifted"] is True
    assert "<html" in result.html.lower() and len(result.html) > 1000
    assert "<html" not in repr(result).lower()


def test_only_requested_columns_are_checked() -> None:
    # given: income strongly shifted, but only age, score and city requested
    reference = make_frame(600, seed=REF_SEED)
    current = make_frame(600, seed=CUR_SEED, shift={"income": 3.0})
    # when
    result = check_drift(reference, current, numerical=["age", "score"], categorical=["city"], settings=DriftSection())
    # then
    assert [c.column for c in result.columns] == ["age", "score", "city"]
    assert result.drifted_columns() == []
    assert result.dataset_drift is False


def test_importing_the_module_does_not_import_evidently() -> None:
    # given: a fresh interpreter at the project root
    code = "import sys, service.drift; print(sorted(m for m in ('evidently', 'prefect', 'mlflow') if m in sys.modules))"
    # when
    root = Path(__file__).parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    # then
    assert out.stdout.strip() == "[]"
