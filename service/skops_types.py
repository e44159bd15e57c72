"""The types a fitted pipeline is made of: the list skops is told to trust when the model is loaded.

skops' own answer (``get_untrusted_types`` of a ``dumps``) serializes the whole model, 0.1-0.8 s for
a boosted ensemble on 100k rows, and MLflow's save serializes it once more. Walking the object graph
finds the same names in milliseconds. The walk may name a type skops would have trusted anyway (the
list stays within our own pipeline's types); if it misses one, MLflow's check on save (it loads what it
wrote with this list) fails and the caller asks skops instead (``exact_types``).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

# Values, and modules: what a module holds is not part of the model.
_NOT_WALKED = (str, bytes, int, float, bool, complex, ModuleType)


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
