"""The fake Kubernetes API of fake_apiserver.py for tests that render this chart's release `driftloop`
with `--set` overrides, as `helm install`/`helm upgrade` render: `lookup` reads the fake cluster."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .conftest import CHART, RELEASE
from .fake_apiserver import FakeApiServer, fake_apiserver, helm_template_in_cluster

LookupCluster = FakeApiServer


@contextmanager
def lookup_cluster(namespace: str) -> Iterator[FakeApiServer]:
    """A cluster where namespace `namespace` exists with its `default` ServiceAccount, and nothing else."""
    with tempfile.TemporaryDirectory(prefix="driftloop-kube-") as folder:
        with fake_apiserver(Path(folder), namespace, RELEASE) as cluster:
            yield cluster


def render_on_cluster(cluster: FakeApiServer, *overrides: str) -> subprocess.CompletedProcess[str]:
    """`helm template` of the chart with `--set` overrides, lookup answered by `cluster`."""
    args = [arg for override in overrides for arg in ("--set", override)]
    return helm_template_in_cluster(cluster, CHART, RELEASE, *args)
