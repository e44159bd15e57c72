"""The demo's folder: a rerun replaces what the demo made and keeps what a user added beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.demo import prepare_workspace


def test_a_rerun_removes_only_what_the_demo_made_and_names_what_it_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a demo folder after a run: its stores and a delivered batch, plus a user's own notes and folder
    root = tmp_path / "driftloop-demo"
    first = prepare_workspace(root, n_batches=2, rows=100, drift_at=2)
    (first.incoming / first.batches[0].name).write_text("delivered")
    for name in ("mlflow.db", "summary.json"):
        (root / name).write_text("from the last run")
    for folder in ("mlartifacts", "prefect"):
        (root / folder).mkdir()
        (root / folder / "state").write_text("from the last run")
    (root / "notes.txt").write_text("mine")
    (root / "analysis").mkdir()
    (root / "analysis" / "plot.py").write_text("mine too")
    # when the demo prepares the folder again
    again = prepare_workspace(root, n_batches=2, rows=100, drift_at=2)
    # then the user's entries are untouched and named
    assert (root / "notes.txt").read_text() == "mine"
    assert (root / "analysis" / "plot.py").read_text() == "mine too"
    assert "kept 2 entries the demo did not make: analysis, notes.txt" in capsys.readouterr().out
    # and the demo's own are fresh: no batch delivered yet, no store or state from the last run
    assert list(again.incoming.iterdir()) == []
    assert not any((root / name).exists() for name in ("mlflow.db", "summary.json", "mlartifacts", "prefect"))
    assert again.config_path.is_file() and all(batch.is_file() for batch in again.batches)
