"""A model's monitoring records, read with one registry search per pass.

A pass needs its model's records four ways: which batch URIs were seen (and under which size and date),
whether this content was checked before, the latest checks against the champion (debouncing, a pending
retrain), and the run a retried write left unfinished. One search of the monitoring experiment answers
all four; the pass adds what it writes, so the records stay current while it holds the model's slot (no
other pass of the model runs meanwhile). A record counts once it is FINISHED (see service.checks).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from service.registry import TAG, Registry

MONITORING = "monitoring"
REPORT_PATH = "drift/drift_report.html"
# A check's report is drawn after its verdict is recorded (service.reports): the tag says where it is.
REPORT_PENDING, REPORT_DRAWN, REPORT_UNAVAILABLE = "pending", "drawn", "unavailable"
# The whole history is read in one call; MLflow's search returns at most this many runs per call.
HISTORY_LIMIT = 50_000


@dataclass(frozen=True)
class DriftCheckRecord:
    run_id: str
    batch_uri: str
    dataset_drift: bool
    report_uri: str
    retrain_requested: bool = False
    reason: str = ""


@dataclass(frozen=True)
class SeenBatch:
    """A batch the monitor has a finished record of: checked, or quarantined with its cause."""

    uri: str
    fingerprint: str
    kind: str  # "drift_check" or "quarantine"
    run_id: str
    cause: str = ""
    dataset_drift: bool = False
    report_pending: bool = False


@dataclass(frozen=True)
class RecordRun:
    """A monitoring run as the records keep it: its tags without the ``driftloop.`` prefix."""

    run_id: str
    artifact_uri: str
    finished: bool
    tags: dict[str, str]

    @classmethod
    def of(cls, run: object) -> RecordRun:
        tags = run.data.tags  # type: ignore[attr-defined]
        ours = {key[len(TAG) :]: value for key, value in tags.items() if key.startswith(TAG)}
        return cls(run.info.run_id, run.info.artifact_uri, run.info.status == "FINISHED", ours)  # type: ignore[attr-defined]

    def matches(self, key: dict[str, str]) -> bool:
        return all(self.tags.get(name) == value for name, value in key.items())

    def check_record(self) -> DriftCheckRecord:
        return DriftCheckRecord(
            run_id=self.run_id,
            batch_uri=self.tags.get("batch_uri", ""),
            dataset_drift=self.tags.get("dataset_drift") == "true",
            report_uri=f"{self.artifact_uri}/{REPORT_PATH}",
            retrain_requested=self.tags.get("retrain") == "true",
            reason=self.tags.get("reason", ""),
        )


@dataclass
class MonitorRecords:
    """Every run of the model's monitoring experiment, newest first, finished or not."""

    runs: list[RecordRun] = field(default_factory=list)
    _seen: dict[str, SeenBatch] | None = field(default=None, repr=False)
    # Keys whose run may exist on the server without being here: a create whose answer was lost.
    _doubted: set[frozenset[tuple[str, str]]] = field(default_factory=set, repr=False)

    def matching(self, key: dict[str, str]) -> list[RecordRun]:
        """Runs carrying every tag of ``key``, finished or not, newest first."""
        return [run for run in self.runs if run.matches(key)]

    def finished(self, key: dict[str, str]) -> list[RecordRun]:
        return [run for run in self.matching(key) if run.finished]

    def check_of(self, batch_hash: str) -> DriftCheckRecord | None:
        """The finished check of this very batch content, whatever the champion since: a batch is checked
        once, so a new champion never re-reads old batches as fresh drift."""
        found = self.finished({"kind": "drift_check", "batch_hash": batch_hash})
        return found[0].check_record() if found else None

    def recent_checks(self, reference_run_id: str, limit: int) -> list[DriftCheckRecord]:
        """The latest finished checks against this reference, newest first; a new champion starts anew."""
        found = self.finished({"kind": "drift_check", "reference_run": reference_run_id})
        return [run.check_record() for run in found[:limit]]

    def seen(self) -> dict[str, SeenBatch]:
        """Every batch URI with a finished record (the newest wins): a pass with nothing new reads no data."""
        if self._seen is not None:
            return self._seen
        seen: dict[str, SeenBatch] = {}
        for run in self.runs:
            uri, stamp = run.tags.get("batch_uri"), run.tags.get("fingerprint")
            if run.finished and uri and stamp and uri not in seen:
                seen[uri] = SeenBatch(
                    uri,
                    stamp,
                    run.tags.get("kind", ""),
                    run.run_id,
                    run.tags.get("cause", ""),
                    run.tags.get("dataset_drift") == "true",
                    run.tags.get("report") == REPORT_PENDING,
                )
        self._seen = seen
        return seen

    def doubt(self, key: dict[str, str]) -> None:
        self._doubted.add(frozenset(key.items()))

    def doubted(self, key: dict[str, str]) -> bool:
        return frozenset(key.items()) in self._doubted

    def settle(self, key: dict[str, str]) -> None:
        self._doubted.discard(frozenset(key.items()))

    def add(self, run: RecordRun) -> None:
        """A run this pass wrote or completed: it replaces its earlier state and becomes the newest."""
        self.runs = [run, *(known for known in self.runs if known.run_id != run.run_id)]
        self._seen = None


def read_records(registry: Registry) -> MonitorRecords:
    """The model's monitoring records, in one search."""
    experiment = registry.experiment_id(MONITORING)
    found = registry.ask(
        "search monitoring runs",
        lambda: registry.client.search_runs(
            [experiment], order_by=["attributes.start_time DESC"], max_results=HISTORY_LIMIT
        ),
    )
    return MonitorRecords([RecordRun.of(run) for run in found])
