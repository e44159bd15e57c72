"""Where no one could miss a heartbeat, flow runs send none: Prefect's heartbeat thread sleeps in whole
seconds, so each flow run's end would wait up to a second to join it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Two flows on Prefect's embedded server (no PREFECT_API_URL): one as Prefect runs it, one inside
# without_heartbeat_if_embedded. Each sleeps, so a heartbeat thread has the time to send its first beat.
SCRIPT = """
import time
from prefect import flow
from prefect.flow_engine import FlowRunEngine
from flows.heartbeat import without_heartbeat_if_embedded

beating = set()
original = FlowRunEngine._emit_flow_run_heartbeat

def counted(self, *args, **kwargs):
    beating.add(self.flow.name)
    return original(self, *args, **kwargs)

FlowRunEngine._emit_flow_run_heartbeat = counted

@flow(name="as-prefect-runs-it")
def usual():
    time.sleep(0.5)

@flow(name="on-the-embedded-server")
def embedded():
    time.sleep(0.5)

usual()
with without_heartbeat_if_embedded():
    embedded()
print(sorted(beating))
"""


def test_a_flow_run_on_the_embedded_server_sends_no_heartbeat(tmp_path: Path) -> None:
    # given no Prefect API configured: the flows run on the embedded server, which stops with the process
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300",
        PREFECT_INTEGRATIONS_KUBERNETES_OBSERVER_ENABLED="false",
    )
    # when a flow runs as Prefect runs it, then one inside without_heartbeat_if_embedded
    ran = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    # then only the first sent a heartbeat
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert ran.stdout.strip().splitlines()[-1] == "['as-prefect-runs-it']"
