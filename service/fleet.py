"""The models directory: one YAML file per model, every model run in isolation, one summary for all.

Adding a model is adding a file: the directory is read afresh on every pass, so nothing restarts.
Removing one stops its checks; its registry history stays in MLflow. A file that does not load, or
two files naming the same model, is that model's error — the others still run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from service.config_file import load_config
from service.errors import ConfigError, DriftloopError, is_transient
from service.settings import Config

MODEL_FILE_PATTERNS = ("*.yaml", "*.yml")
EXIT_OK, EXIT_BAD_INPUT, EXIT_INFRASTRUCTURE = 0, 2, 3


@dataclass(frozen=True)
class ModelEntry:
    """One model file: its config, or why it cannot be used."""

    path: Path
    config: Config | None
    error: str | None = None

    @property
    def name(self) -> str:
        return self.config.model.name if self.config else self.path.stem


@dataclass(frozen=True)
class ModelReport:
    """A row of the pass summary."""

    model: str
    source: str
    checked: int = 0
    drifted: int = 0
    retrained: int = 0
    promoted: int = 0
    quarantined: int = 0
    error: str = ""
    exit_code: int = EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def model_files(models_dir: Path) -> list[Path]:
    """The model files of a directory, in name order."""
    if not models_dir.is_dir():
        raise ConfigError(f"{models_dir}: models directory not found: expected a folder of *.yaml model files")
    files = sorted({path for pattern in MODEL_FILE_PATTERNS for path in models_dir.glob(pattern)})
    if not files:
        raise ConfigError(f"{models_dir}: no *.yaml or *.yml model file in this folder")
    return files


def load_fleet(paths: list[Path]) -> list[ModelEntry]:
    """Load every file; a bad file, or a model named by two files, becomes an entry with its error."""
    entries = []
    for path in paths:
        try:
            entries.append(ModelEntry(path, load_config(path)))
        except ConfigError as exc:
            entries.append(ModelEntry(path, None, str(exc)))
    return _without_duplicates(entries)


def _without_duplicates(entries: list[ModelEntry]) -> list[ModelEntry]:
    # Neither file wins: which of two configs is meant for the registry's model is the user's call.
    by_name: dict[str, list[ModelEntry]] = {}
    for entry in entries:
        if entry.config is not None:
            by_name.setdefault(entry.name, []).append(entry)
    result = []
    for entry in entries:
        twins = by_name.get(entry.name, []) if entry.config is not None else []
        if len(twins) > 1:
            files = " and ".join(str(twin.path) for twin in twins)
            message = f"model {entry.name!r} is configured twice, in {files}: expected one file per model"
            entry = ModelEntry(entry.path, None, message)
        result.append(entry)
    return result


class ModelsDirectory:
    """The models directory as a long-running server reads it: read again whenever a file is added,
    removed or changed, so a model added to the ConfigMap is served without a restart. A file that does
    not load is listed in ``errors``, never fatal for the others."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._stamp: tuple[tuple[str, int], ...] | None = None
        self._entries: list[ModelEntry] = []

    def _current_stamp(self) -> tuple[tuple[str, int], ...]:
        if not self.folder.is_dir():
            return ()
        files = sorted({path for pattern in MODEL_FILE_PATTERNS for path in self.folder.glob(pattern)})
        return tuple((str(path), path.stat().st_mtime_ns) for path in files)

    def entries(self) -> list[ModelEntry]:
        stamp = self._current_stamp()
        if stamp != self._stamp:
            self._entries = load_fleet([Path(path) for path, _ in stamp])
            self._stamp = stamp
        return self._entries

    def configs(self) -> dict[str, Config]:
        return {entry.name: entry.config for entry in self.entries() if entry.config is not None}

    def errors(self) -> dict[str, str]:
        return {str(entry.path): entry.error for entry in self.entries() if entry.error is not None}


def ask_each(
    entries: list[ModelEntry], ask: Callable[[ModelEntry], str | None], threads: int = 8
) -> list[tuple[ModelEntry, str | None]]:
    """``ask(entry)`` for every model, side by side: each answer is a few registry round trips and a
    listing, so a fleet's sweep waits on the network, not the CPU. In the entries' order. A model whose
    question fails gets the reason instead of an answer: its pass then runs, fails and says why, alone."""
    from concurrent.futures import ThreadPoolExecutor

    def answer(entry: ModelEntry) -> str | None:
        try:
            return ask(entry)
        except Exception as exc:  # isolation: one model's store being down is that model's business
            return f"could not tell ({one_line(exc)})"

    if not entries:
        return []
    with ThreadPoolExecutor(max_workers=min(threads, len(entries))) as pool:
        return list(zip(entries, pool.map(answer, entries), strict=True))


def is_due(last_pass: datetime | None, check_every: int | None, now: datetime) -> bool:
    """Whether a model's pass is due: at every sweep, unless its file asks for passes further apart."""
    return check_every is None or last_pass is None or (now - last_pass).total_seconds() >= check_every


def exit_code_of(exc: BaseException) -> int:
    """A dependency's failure (a server down, a timeout) is 3; bad input, and anything else, is 2."""
    return EXIT_INFRASTRUCTURE if is_transient(exc) else EXIT_BAD_INPUT


def one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if isinstance(exc, DriftloopError) else f"{type(exc).__name__}: {text}"


def run_fleet(entries: list[ModelEntry], run_one: Callable[[ModelEntry], ModelReport]) -> list[ModelReport]:
    """Run every model; one model's failure is its own row and never stops another's pass."""
    reports = []
    for entry in entries:
        if entry.error is not None:
            reports.append(ModelReport(entry.name, str(entry.path), error=entry.error, exit_code=EXIT_BAD_INPUT))
            continue
        try:
            reports.append(run_one(entry))
        except Exception as exc:  # isolation: whatever one model raises is reported on its row
            reports.append(ModelReport(entry.name, str(entry.path), error=one_line(exc), exit_code=exit_code_of(exc)))
    return reports


def report_of(entry: ModelEntry, summary: Any) -> ModelReport:
    """The summary row of a monitor pass (``flows.monitor.MonitorSummary``, read by attribute)."""
    fresh = [verdict for verdict in summary.verdicts if not verdict.already_checked]
    checked = [verdict for verdict in fresh if not verdict.quarantined]
    trained = [*([summary.bootstrap] if summary.bootstrap else []), *summary.retrains]
    promoted = sum(outcome.action == "champion" for retrain in trained for outcome in retrain.outcomes[1:])
    bad = [verdict for verdict in fresh if verdict.quarantined]
    error = "; ".join(f"quarantined {verdict.batch_uri}: {verdict.reason}" for verdict in bad)
    if getattr(summary, "skipped", False):
        error = "skipped: another pass of this model was running"
    return ModelReport(
        model=entry.name,
        source=str(entry.path),
        checked=len(checked),
        drifted=sum(verdict.dataset_drift for verdict in checked),
        retrained=len(trained),
        promoted=promoted,
        quarantined=len(bad),
        error=error,
        exit_code=EXIT_BAD_INPUT if bad else EXIT_OK,
    )


def worst_exit_code(reports: list[ModelReport]) -> int:
    return max((report.exit_code for report in reports), default=EXIT_OK)
