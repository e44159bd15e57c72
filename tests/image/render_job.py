"""Print the Kubernetes Job manifest that the work pool's worker would create for a flow run, as JSON.

Run inside the image, which has prefect-kubernetes: ``python render_job.py FLOW_RUN_ID``, with
PREFECT_API_URL set. It calls what the Kubernetes worker calls before it creates the Job
(``KubernetesWorkerJobConfiguration.resolve_for_flow_run``), so the test runs the container with the
Job's own command and environment rather than a copy of them.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration


async def render(flow_run_id: UUID) -> dict[str, Any]:
    async with get_client() as client:
        flow_run = await client.read_flow_run(flow_run_id)
        deployment = await client.read_deployment(flow_run.deployment_id)
        work_pool = await client.read_work_pool(deployment.work_pool_name)
        configuration = await KubernetesWorkerJobConfiguration.resolve_for_flow_run(
            flow_run, client=client, work_pool=work_pool, worker_name="image-test", deployment=deployment
        )
    return configuration.job_manifest


if __name__ == "__main__":
    print(json.dumps(asyncio.run(render(UUID(sys.argv[1])))))
