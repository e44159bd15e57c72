"""Promotion policy over the registry: dev → staging → prod by alias moves, approval, and rollback.

A version becomes an environment's ``champion``; the one it replaces becomes ``previous``, so rollback
is one alias move. An environment whose policy is ``approval`` receives the version as ``challenger``
and waits: ``approve`` makes it champion. Nothing here trains or evaluates: it only moves aliases.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from service.errors import PromotionError
from service.progress import step
from service.registry import CHALLENGER, CHAMPION, PREVIOUS, Registry, VersionRef

if TYPE_CHECKING:  # the gate pulls in scikit-learn: moving an alias (approve, rollback) needs none of it
    from service.evaluate import GateDecision

Action = Literal["champion", "awaiting_approval", "rejected", "unchanged", "rolled_back"]


@dataclass(frozen=True)
class Outcome:
    env: str
    model: str
    version: str
    action: Action
    message: str


def _make_champion(registry: Registry, env: str, version: VersionRef) -> Outcome:
    current = registry.at_alias(env, CHAMPION)
    if current is not None and current.version == version.version:
        return Outcome(env, version.name, version.version, "unchanged", f"{version.uri} is already @champion")
    if current is not None:
        registry.set_alias(env, PREVIOUS, current)
    registry.set_alias(env, CHAMPION, version)
    challenger = registry.at_alias(env, CHALLENGER)
    if challenger is not None and challenger.version == version.version:
        registry.delete_alias(env, CHALLENGER)
    registry.tag_version(version, {"status": "champion", "promoted_at": str(int(time.time()))})
    replaced = f" (replaces v{current.version}, now @previous)" if current else ""
    return Outcome(env, version.name, version.version, "champion", f"{version.uri} is @champion{replaced}")


def accept_candidate(registry: Registry, candidate: VersionRef, decision: GateDecision) -> Outcome:
    """Settle a freshly registered version in the first environment according to the gate."""
    env = registry.config.environments[0]
    registry.tag_version(candidate, {"gate": decision.reason, "gate_passed": str(decision.passed).lower()})
    if decision.promote:
        return _make_champion(registry, env, candidate)
    registry.tag_version(candidate, {"status": "rejected", "rejected_reason": decision.reason})
    return Outcome(env, candidate.name, candidate.version, "rejected", f"{candidate.uri} rejected: {decision.reason}")


def promote(registry: Registry, to_env: str) -> Outcome:
    """Bring the champion of the environment before ``to_env`` into it, by that environment's policy."""
    envs = registry.config.environments
    if to_env not in envs:
        raise PromotionError(f"unknown environment {to_env!r}: expected one of {envs}")
    position = envs.index(to_env)
    if position == 0:
        raise PromotionError(f"{to_env!r} is the first environment: versions enter it by training, not promotion")
    source_env = envs[position - 1]
    source = registry.at_alias(source_env, CHAMPION)
    if source is None:
        raise PromotionError(f"{registry.name(source_env)} has no @champion to promote to {to_env!r}")
    copy = registry.copy_to(source, to_env)
    current = registry.at_alias(to_env, CHAMPION)
    if current is not None and current.version == copy.version:
        return Outcome(to_env, copy.name, copy.version, "unchanged", f"{copy.uri} is already @champion")
    if registry.config.policy_for(to_env) == "approval":
        registry.set_alias(to_env, CHALLENGER, copy)
        registry.tag_version(copy, {"status": "awaiting_approval"})
        return Outcome(
            to_env,
            copy.name,
            copy.version,
            "awaiting_approval",
            f"{copy.uri} is @challenger, awaiting approval",
        )
    return _make_champion(registry, to_env, copy)


def promote_through(registry: Registry) -> list[Outcome]:
    """Promote along the environments until one waits for approval or nothing changes."""
    outcomes = []
    for env in registry.config.environments[1:]:
        step("promoting into %s", env)
        outcome = promote(registry, env)
        outcomes.append(outcome)
        if outcome.action == "awaiting_approval":
            break
    return outcomes


def approve(registry: Registry, env: str) -> Outcome:
    """Make the version awaiting approval in ``env`` its champion."""
    waiting = registry.at_alias(env, CHALLENGER)
    if waiting is None:
        raise PromotionError(f"{registry.name(env)} has no @challenger: no version awaits approval")
    registry.tag_version(waiting, {"approved": "true"})
    return _make_champion(registry, env, waiting)


def rollback(registry: Registry, env: str) -> Outcome:
    """Move ``champion`` back to ``previous``; the version rolled back from is tagged so."""
    previous = registry.at_alias(env, PREVIOUS)
    current = registry.at_alias(env, CHAMPION)
    if previous is None or current is None:
        raise PromotionError(f"{registry.name(env)} has no @previous version: nothing to roll back to")
    registry.set_alias(env, CHAMPION, previous)
    # Dropping @previous makes a second rollback an error instead of a silent roll forward.
    registry.delete_alias(env, PREVIOUS)
    registry.tag_version(current, {"status": "rolled_back"})
    registry.tag_version(previous, {"status": "champion"})
    return Outcome(
        env,
        previous.name,
        previous.version,
        "rolled_back",
        f"{previous.uri} is @champion again (v{current.version} rolled back)",
    )
