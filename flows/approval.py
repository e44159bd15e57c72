"""The approval flow: a version awaiting approval, asked about in the Prefect UI by a suspended run.

Started by the approval deployment's trigger on ``driftloop.approval.needed``. While suspended the run
holds no infrastructure (its Job has ended); resumed with its input, it runs again from the top in a new
process, and ``suspend_flow_run`` with the same key returns the input instead of suspending again.
"""

from __future__ import annotations

from typing import Literal

from prefect import flow, get_run_logger, task
from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run
from prefect.settings import PREFECT_API_URL

from flows import tasks
from service import approval, steering
from service.config_file import load_config
from service.promote import Outcome
from service.registry import Registry


class Approval(RunInput):
    """The form the Prefect UI shows on the suspended run."""

    decision: Literal["approve", "reject"]
    note: str = ""


@task(**tasks.IO)
def request(registry: Registry, env: str, version: str | None) -> approval.Request | None:
    return approval.pending_request(registry, env, version)


@task(**tasks.IO)
def decide(registry: Registry, env: str, answer: Approval, version: str, prefect_api: str | None) -> Outcome:
    decision = steering.Decision(version, answer.note, f"prefect flow run {flow_run.get_id()}")
    steered = steering.steer(registry, env, answer.decision, prefect_api=prefect_api, decision=decision)
    for failure in steered.failures:
        get_run_logger().warning(failure)
    return steered.outcome


# A literal name (service.approval.FLOW, which finds the runs to cancel): the chart's register hook reads
# it from the source without importing the module.
@flow(name="approval", flow_run_name="approve {model} v{version} for {env}")
def approve_in_ui(config_path: str, model: str, env: str = "prod", version: str | None = None) -> Outcome | None:
    """Suspend until someone approves or rejects ``version`` of ``model`` in ``env`` (None: whichever
    waits when the run starts); then decide, unless it was decided meanwhile."""
    registry = Registry(load_config(config_path))
    asked = request(registry, env, version)
    if asked is None:
        get_run_logger().info("%s: no version awaits approval in %s (decided already): nothing to ask", model, env)
        return None
    # Keyed by the version: resumed, the run returns its answer here; if another version waits by then
    # (``version`` not given), it asks anew about that one.
    form = Approval.with_initial_data(description=asked.text)
    answer = suspend_flow_run(wait_for_input=form, key=f"v{asked.version}")
    outcome = decide(registry, env, answer, asked.version, PREFECT_API_URL.value())
    get_run_logger().info(outcome.message)
    return outcome
