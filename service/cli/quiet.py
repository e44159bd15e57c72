"""Keeping the libraries out of the terminal unless ``-v``: driftloop prints its own progress and errors.

Three kinds of noise, three switches: Prefect's and MLflow's loggers (their level settings, which the
libraries read when they set up logging), MLflow's bare prints to stderr ("Registered model … already
exists", not logging: only silencing MLflow's own stream stops them) and Python warnings (scipy, scikit-learn,
pandas). Nothing is imported here: ``--help`` stays instant, and MLflow is silenced the moment some
command imports it.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import warnings
from collections.abc import Callable
from types import ModuleType

QUIET_ENV = {
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
    "PYTHONWARNINGS": "ignore",  # for the processes driftloop starts, too
}
MLFLOW_STREAM = "mlflow.utils.logging_utils"


def quiet_libraries() -> None:
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    warnings.simplefilter("ignore")
    after_import(MLFLOW_STREAM, _silence_mlflow_stream)


def _silence_mlflow_stream(module: ModuleType) -> None:
    # Not ``disable_logging()``: MLflow calls ``enable_logging()`` itself after saving a model.
    stream = module.MLFLOW_LOGGING_STREAM
    stream.write = len  # what a stream's write returns: the characters it took
    stream.flush = lambda: None


def after_import(name: str, then: Callable[[ModuleType], object]) -> None:
    """Call ``then`` with module ``name`` once it is imported: now if it already is, else right after."""
    if name in sys.modules:
        then(sys.modules[name])
        return
    sys.meta_path.insert(0, _AfterImport(name, then))


class _AfterImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: it lets the other finders find ``name`` and wraps the loader they return."""

    def __init__(self, name: str, then: Callable[[ModuleType], object]) -> None:
        self.name, self.then = name, then

    def find_spec(self, fullname: str, path: object, target: object = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # once; and the lookup below must not find this finder again
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)  # type: ignore[arg-type]
        if spec is None or spec.loader is None:
            return spec
        loader, then = spec.loader, self.then

        class Loader(importlib.abc.Loader):
            def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
                return loader.create_module(spec)

            def exec_module(self, module: ModuleType) -> None:
                loader.exec_module(module)
                then(module)

        spec.loader = Loader()
        return spec
