"""The types a fitted pipeline is made of (the list skops is told to trust when the model is loaded),
and the check that a saved model loads with that list.

skops' own answer (``get_untrusted_types`` of a ``dumps``) serializes the whole model, 0.1-0.8 s for
a boosted ensemble on 100k rows, and MLflow's save serializes it once more. Walking the object graph
finds the same names in milliseconds. The walk may name a type skops would have trusted anyway (the
list stays within our own pipeline's types); if it misses one, the check on save fails and the caller
asks skops instead (``exact_types``).

MLflow checks a skops save by loading the model back with the list: building every tree again, 0.2-0.35 s
for the boosted ensemble above. ``check_saves_by_audit`` makes it audit the written file instead, as
skops' load does before it builds anything: the same verdict (the file's types beyond skops' defaults,
against the list), 0.09 s.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from service.errors import RegistryError

# Values, and modules: what a module holds is not part of the model.
_NOT_WALKED = (str, bytes, int, float, bool, complex, ModuleType)
# What mlflow.sklearn._save_model takes, in MLflow 3.17: the function check_saves_by_audit replaces.
_MLFLOW_SAVE_PARAMETERS = ["sk_model", "output_path", "serialization_format", "skops_trusted_types"]


def _name(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def types_in(model: object) -> list[str]:
    """Every type reachable from ``model`` through attributes, containers and pickled state, by the
    dotted name skops gives it."""
    seen: set[int] = set()
    names: set[str] = set()
    pending: list[Any] = [model]
    while pending:
        item = pending.pop()
        if isinstance(item, np.generic):  # a numpy scalar: skops stores it with its dtype
            names.update({_name(type(item)), "numpy.dtype"})
        elif item is None or isinstance(item, _NOT_WALKED) or id(item) in seen:
            continue
        elif isinstance(item, type):
            names.add(_name(item))
        elif isinstance(item, np.dtype):
            names.add("numpy.dtype")
        else:
            seen.add(id(item))
            names.add(_name(type(item)))
            pending.extend(_parts(item))
    return sorted(names)


def _parts(item: Any) -> list[Any]:
    if isinstance(item, np.ndarray):
        return item.ravel().tolist() if item.dtype == object else []
    if isinstance(item, dict):
        return [*item.keys(), *item.values()]
    if isinstance(item, (list, tuple, set, frozenset)):
        return list(item)
    if hasattr(item, "__dict__"):
        return [vars(item)]
    try:  # an extension type (a tree, a distance metric): the arguments and state it pickles with
        reduced = item.__reduce_ex__(4)
    except Exception:  # skops cannot store it either: MLflow's save says so, naming the model
        return []
    return list(reduced[1:3]) if isinstance(reduced, tuple) else []


def exact_types(model: object) -> list[str]:
    """skops' own list, from a full serialization of the model."""
    import skops.io

    return skops.io.get_untrusted_types(data=skops.io.dumps(model))


class UntrustedTypesError(RegistryError):
    """A saved model holds types its trusted list does not name: it would not load with that list."""

    def __init__(self, untrusted: set[str]) -> None:
        super().__init__(f"the saved model holds types its trusted list does not name: {sorted(untrusted)}")
        self.untrusted = untrusted


def dump_and_audit(model: object, path: str, trusted: list[str] | None) -> None:
    """Write ``model`` in skops format to ``path`` and raise UntrustedTypesError (the file removed) when
    loading it with ``trusted`` would be refused: skops' load audits exactly this before building anything."""
    import skops.io

    skops.io.dump(model, path)
    untrusted = set(skops.io.get_untrusted_types(file=path)) - set(trusted or [])
    if untrusted:
        Path(path).unlink()
        raise UntrustedTypesError(untrusted)


def refused_for_its_types(exc: BaseException) -> bool:
    """Whether a save failed because its trusted list misses a type the model holds: the audit's error, or
    MLflow's own check's (raised while handling skops' refusal to load)."""
    from skops.io.exceptions import UntrustedTypesFoundException

    return isinstance(exc, UntrustedTypesError) or isinstance(exc.__context__, UntrustedTypesFoundException)


def check_saves_by_audit() -> None:
    """Make ``mlflow.sklearn.save_model`` in skops format check its file by ``dump_and_audit``, not by
    loading the model back. Other formats are left to MLflow. Idempotent; for the whole process, as the
    result is the same: a save that passes would have passed MLflow's load, and one that fails still fails.

    ``mlflow.sklearn._save_model`` is private: an MLflow whose function is missing or takes other
    parameters keeps its own check, and the test that a save loads nothing back fails."""
    import mlflow.sklearn as flavour
    from mlflow.exceptions import MlflowException

    mlflows_own = getattr(flavour, "_save_model", None)
    if mlflows_own is None or getattr(mlflows_own, "audits_skops", False):
        return
    if list(inspect.signature(mlflows_own).parameters) != _MLFLOW_SAVE_PARAMETERS:
        return  # an MLflow whose private save is not the one this replaces: its own check (the load) stays

    def _save_model(
        sk_model: object, output_path: str, serialization_format: str, skops_trusted_types: list[str] | None
    ) -> None:
        if serialization_format != flavour.SERIALIZATION_FORMAT_SKOPS:
            return mlflows_own(sk_model, output_path, serialization_format, skops_trusted_types)
        try:
            dump_and_audit(sk_model, output_path, skops_trusted_types)
        except UntrustedTypesError:
            raise
        except Exception as exc:  # as MLflow words it: skops cannot store this model
            Path(output_path).unlink(missing_ok=True)
            raise MlflowException(
                f"The sklearn model could not be serialized in the skops serialization format: {exc}"
            ) from exc

    _save_model.audits_skops = True  # type: ignore[attr-defined]
    _save_model.mlflows_own = mlflows_own  # type: ignore[attr-defined]
    flavour._save_model = _save_model
