"""A champion's reference kept with its training run: what drift checks and reports need of its window.

A retrain profiles the window it learnt from (the sorted values and category counts the tests compare
with, ``service.drift.check.profile_reference``) and keeps a seeded sample of its rows for Evidently's
HTML report, and logs both as artifacts of the training run (``reference/``), beside the lineage that
names them with their digests. A monitor process downloads the profile once, and the sample only when it
draws a report, instead of reading, validating and profiling the whole window again. A version registered
before profiles were stored has no ``reference`` entry in its lineage: its window is read as before.

A stored file that is missing, altered or unreadable fails the check loudly (``RegistryError``) rather than
falling back to the window: the window may have changed or gone since the model learnt from it, and a
verdict against other data would look like any other.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from service.contracts import DataContract
from service.drift.check import ReferenceProfile, profile_reference
from service.drift.profile_file import read_profile, write_profile
from service.drift.report import sample_rows
from service.errors import RegistryError, RegistryUnavailable
from service.mlflow_store import Store

if TYPE_CHECKING:
    from service.registry import Registry

FOLDER = "reference"
PROFILE_FILE, SAMPLE_FILE = "profile.parquet", "sample.parquet"
LINEAGE_KEY = "reference"  # the lineage entry naming the stored files


@dataclass(frozen=True)
class ReferenceSnapshot:
    """What the monitor needs of a training window, taken while the window is in memory."""

    profile: ReferenceProfile = field(repr=False)
    rows: int
    sample: pd.DataFrame = field(repr=False)  # at most ``drift.report_rows`` rows, for the report


def snapshot_of(frame: pd.DataFrame, contract: DataContract, report_rows: int) -> ReferenceSnapshot:
    """Profile ``frame`` (conformed to ``contract``) as a check of it would, and sample its features as the
    report would (the same seeded sample: a report drawn from it is the one drawn from the whole window)."""
    profile = profile_reference(frame, contract.numerical, contract.categorical)
    return ReferenceSnapshot(profile, len(frame), sample_rows(frame[contract.feature_names], report_rows))


def write_snapshot(snapshot: ReferenceSnapshot, run_folder: Path) -> dict[str, object]:
    """Write the snapshot's files where a training run's artifacts are gathered before their one upload;
    return the lineage entry that names them."""
    folder = run_folder / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    write_profile(snapshot.profile, snapshot.rows, folder / PROFILE_FILE)
    snapshot.sample.to_parquet(folder / SAMPLE_FILE, index=False, compression="zstd")
    digests = {name: _sha256(folder / name) for name in (PROFILE_FILE, SAMPLE_FILE)}
    return {
        "profile": f"{FOLDER}/{PROFILE_FILE}",
        "profile_sha256": digests[PROFILE_FILE],
        "sample": f"{FOLDER}/{SAMPLE_FILE}",
        "sample_sha256": digests[SAMPLE_FILE],
        "rows": snapshot.rows,
        "sample_rows": len(snapshot.sample),
    }


@dataclass(frozen=True)
class StoredReference:
    """Where a training run's snapshot is, and the digests its files must have."""

    location: str  # the artifact URI of the run's ``reference/`` folder
    profile_sha256: str
    sample_sha256: str
    rows: int
    store: Store = field(compare=False, repr=False)

    def profile(self) -> ReferenceProfile:
        """Downloaded once per process (and champion), as the window was read once before."""
        return _profile(self)

    def sample(self) -> pd.DataFrame:
        return _sample(self)


def stored_reference(registry: Registry, run_id: str, lineage: dict[str, object]) -> StoredReference | None:
    """The snapshot a training run's lineage names; None for a run logged before snapshots were stored."""
    entry = lineage.get(LINEAGE_KEY)
    if not isinstance(entry, dict):
        return None
    try:
        return StoredReference(
            registry.run_artifact_uri(run_id, FOLDER),
            str(entry["profile_sha256"]),
            str(entry["sample_sha256"]),
            int(entry["rows"]),
            registry.default,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RegistryError(f"run {run_id}: lineage.json's {LINEAGE_KEY!r} entry is malformed ({exc!r})") from None


@lru_cache(maxsize=4)
def _profile(stored: StoredReference) -> ReferenceProfile:
    with tempfile.TemporaryDirectory(prefix="driftloop-reference-") as folder:
        path = _download(stored, PROFILE_FILE, stored.profile_sha256, Path(folder))
        try:
            profile, rows = read_profile(path)
        except ValueError as exc:
            raise _unreadable(stored, PROFILE_FILE, str(exc)) from None
    if rows != stored.rows:
        raise _unreadable(stored, PROFILE_FILE, f"it profiles {rows} rows, its lineage says {stored.rows}")
    return profile


@lru_cache(maxsize=4)
def _sample(stored: StoredReference) -> pd.DataFrame:
    with tempfile.TemporaryDirectory(prefix="driftloop-reference-") as folder:
        path = _download(stored, SAMPLE_FILE, stored.sample_sha256, Path(folder))
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several kinds on a damaged file: all mean unreadable
            raise _unreadable(stored, SAMPLE_FILE, str(exc)) from None


def _download(stored: StoredReference, name: str, sha256: str, folder: Path) -> Path:
    """One round trip: the file itself (as ``Registry.run_text`` fetches one), checked against its digest."""
    repository = stored.store.artifacts(stored.location)
    local = folder / name
    try:
        stored.store.ask(f"download {stored.location}/{name}", lambda: repository._download_file(name, str(local)))
    except RegistryUnavailable:
        raise
    except RegistryError as exc:  # the server answered: the file its lineage names is not there (or refused)
        raise _unreadable(stored, name, f"it cannot be fetched ({exc})") from None
    if _sha256(local) != sha256:
        raise _unreadable(stored, name, "its content differs from the digest recorded when it was logged")
    return local


def _unreadable(stored: StoredReference, name: str, why: str) -> RegistryError:
    return RegistryError(
        f"{stored.location}/{name}: the champion's stored reference cannot be used: {why}. No check is made "
        "against other data: restore the file, or retrain the model (`driftloop retrain`) to store a new one"
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
