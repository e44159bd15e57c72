"""Approval where Prefect users look for it: a suspended flow run of the ``approval`` deployment per
version awaiting approval, whose input form (approve / reject, and a note) is the decision.

The MLflow alias stays the system of record: the pending state is ``@challenger`` in the environment,
whoever decides. The run only asks; the decision goes through ``service.steering`` like the CLI's and
the API's. Whichever decides first wins, and then every approval run still suspended for that model and
environment is cancelled, with a message saying what was decided and how, so none waits for an answer
already given. (Cancelled rather than resumed: a resumed run would start a Job only to find nothing left
to do.) A run resumed anyway — the decision came from a CLI without a Prefect API, or in a race — names
the version it asked about, finds it no longer waiting, and changes nothing.

Plain HTTP through ``service.orchestrator``: ``service/`` does not import Prefect.
"""

from __future__ import annotations

from dataclasses import dataclass

from service import orchestrator, promote
from service.notify import Delivery, attempt
from service.registry import CHAMPION, TAG, Registry, VersionRef

FLOW = "approval"  # the flow's name and its deployment's, in flows/approval.py and flows/prefect.yaml


@dataclass(frozen=True)
class Request:
    """What an approval run asks about: the waiting version, and the text above its form."""

    version: str
    text: str


def pending_request(registry: Registry, env: str, version: str | None = None) -> Request | None:
    """The question for the version awaiting approval in ``env`` (only ``version``, when given); None when
    none waits: decided already, or replaced by a newer one."""
    waiting = promote.awaiting(registry, env, version)
    if waiting is None:
        return None
    return Request(waiting.version, request_text(env, waiting, registry.at_alias(env, CHAMPION)))


def close_suspended(model: str, env: str, message: str, api: str) -> list[Delivery]:
    """Cancel every suspended approval run of ``model`` in ``env``, with ``message``; report each attempt.

    A failure is reported, never raised: the decision it follows has been made, and a run left suspended
    changes nothing if resumed later.
    """
    try:
        runs = orchestrator.suspended_flow_runs(FLOW, api)
    except orchestrator.OrchestratorError as exc:
        return [Delivery("approval_run", f"{api}/flow_runs", str(exc))]
    waiting = [run for run in runs if _asks_about(run, model, env)]
    return [
        attempt("approval_run", f"{api}/flow_runs/{run['id']}", lambda run=run: _cancel(run, message, api))
        for run in waiting
    ]


def _asks_about(run: dict[str, object], model: str, env: str) -> bool:
    parameters = run.get("parameters") or {}
    return isinstance(parameters, dict) and parameters.get("model") == model and parameters.get("env") == env


def _cancel(run: dict[str, object], message: str, api: str) -> None:
    orchestrator.cancel_flow_run(str(run["id"]), message, api)


def request_text(env: str, waiting: VersionRef, champion: VersionRef | None) -> str:
    """The markdown above the approval form: which version, where it comes from, how its gate went."""
    tags = {key.removeprefix(TAG): value for key, value in waiting.tags.items()}
    lines = [
        f"**{waiting.uri}** awaits approval to become `@champion` of {env}.",
        "",
        f"- replaces: {champion.uri if champion else 'nothing (first champion)'}",
        f"- copied from: {tags.get('copied_from', '-')}",
        f"- gate: {tags.get('gate', '-')}",
        f"- holdout: {_scores(tags)}",
        f"- git sha: {tags.get('git_sha', '-')}, training run: {waiting.run_id or '-'}",
        "",
        (
            "Approve makes it `@champion` (the current one becomes `@previous`); reject tags it rejected and"
            " removes `@challenger`. `driftloop approve`/`reject` and the API decide the same; the first"
            " decision wins."
        ),
    ]
    return "\n".join(lines)


def _scores(tags: dict[str, str]) -> str:
    metric, score = tags.get("metric", ""), tags.get("challenger_score", "")
    if not score:
        return "no score recorded"
    if not tags.get("champion_score"):
        return f"{metric} {float(score):.3f} (no champion to compare)"
    return f"{metric} {float(score):.3f} vs the champion's {float(tags['champion_score']):.3f} on the same holdout"
