"""Debouncing and naming in the monitor's decisions."""

from __future__ import annotations

import pytest

from service.monitor import should_retrain
from service.settings import DebounceSection
from service.verdicts import artifact_key


@pytest.mark.parametrize(
    ("history", "window", "needed", "act"),
    [
        ([True], 3, 2, False),  # the first drifted check waits for confirmation
        ([True, True], 3, 2, True),  # the second one, within the window, acts
        ([True, False, True], 3, 2, True),  # two of the last three
        ([True, False, False, True], 3, 2, False),  # the older drift fell out of the window
        ([False, True, True], 3, 2, False),  # the latest did not drift: never act on the past
        ([True], 1, 1, True),  # no debounce
        ([], 3, 2, False),
    ],
)
def test_retrain_when_the_latest_drifts_and_n_of_the_last_m_did(
    history: list[bool], window: int, needed: int, act: bool
) -> None:
    decided, reason = should_retrain(history, DebounceSection(window=window, min_drifted=needed))
    assert decided is act
    assert reason


def test_artifact_keys_are_what_prefect_accepts() -> None:
    assert artifact_key("Weather_v2.eu") == "drift-weather-v2-eu"
