"""Promotion policy over the registry: dev → staging → prod by alias moves, approval, and rollback.

A version becomes an environment's ``champion``; the one it replaces becomes ``previous``, so rollback
is one alias move. An environment whose policy is ``approval`` receives the version as ``challenger``
and waits: ``approve`` makes it champion, ``reject`` turns it down. A decision may name the version it
is about (a suspended approval run does): if that version no longer waits, the decision changes nothing.
Nothing here trains or evaluates: it only moves aliases.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from service.errors import PromotionError
from service.progress import step
from service.registry import CHALLENGER, CHAMPION, PREVIOUS, TAG, Registry, VersionRef

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


def _make_champion(registry: Registry, env: str, version: VersionRef, aliases: dict[str, str] | None = None) -> Outcome:
    """``version`` becomes ``env``'s champion, the one it replaces ``previous``. ``aliases``: the model's
    aliases as the caller has just read them (``Registry.aliases``), read here otherwise."""
    aliases = registry.aliases(env) if aliases is None else aliases
    current = aliases.get(CHAMPION)
    if current == version.version:
        return Outcome(env, version.name, version.version, "unchanged", f"{version.uri} is already @champion")
    if current is not None:
        registry.set_alias(env, PREVIOUS, current)
    registry.set_alias(env, CHAMPION, version.version)
    if aliases.get(CHALLENGER) == version.version:
        registry.delete_alias(env, CHALLENGER)
    registry.tag_version(version, {"status": "champion", "promoted_at": str(int(time.time()))})
    replaced = f" (replaces v{current}, now @previous)" if current else ""
    return Outcome(env, version.name, version.version, "champion", f"{version.uri} is @champion{replaced}")


def accept_candidate(registry: Registry, candidate: VersionRef, decision: GateDecision) -> Outcome:
    """Settle a freshly registered version in the first environment according to the gate."""
    env = registry.config.environments[0]
    gate = gate_tags(decision)
    if missing := {key: value for key, value in gate.items() if candidate.tags.get(f"{TAG}{key}") != value}:
        registry.tag_version(candidate, missing)  # registration gives them: only a version made without them
    if decision.promote:
        return _make_champion(registry, env, candidate)
    registry.tag_version(candidate, {"status": "rejected", "rejected_reason": decision.reason})
    return Outcome(env, candidate.name, candidate.version, "rejected", f"{candidate.uri} rejected: {decision.reason}")


def gate_tags(decision: GateDecision) -> dict[str, str]:
    """How the gate judged a version: given to it when registered, checked when it is settled."""
    return {"gate": decision.reason, "gate_passed": str(decision.passed).lower()}


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
    aliases = registry.aliases(to_env)
    if aliases.get(CHAMPION) == copy.version:
        return Outcome(to_env, copy.name, copy.version, "unchanged", f"{copy.uri} is already @champion")
    if registry.config.policy_for(to_env) == "approval":
        registry.set_alias(to_env, CHALLENGER, copy.version)
        registry.tag_version(copy, {"status": "awaiting_approval"})
        return Outcome(
            to_env,
            copy.name,
            copy.version,
            "awaiting_approval",
            f"{copy.uri} is @challenger, awaiting approval",
        )
    return _make_champion(registry, to_env, copy, aliases)


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


def awaiting(registry: Registry, env: str, version: str | None = None) -> VersionRef | None:
    """The version awaiting approval in ``env`` (only if it is ``version``, when given); None: none waits."""
    waiting = registry.at_alias(env, CHALLENGER)
    if waiting is None or (version is not None and waiting.version != version):
        return None
    return waiting


def _pending(registry: Registry, env: str, version: str | None) -> VersionRef | Outcome:
    """What a decision applies to: the waiting version, or — for a decision about a version that no
    longer waits (already decided elsewhere, or replaced) — an unchanged outcome, so it moves nothing."""
    waiting = awaiting(registry, env, version)
    if waiting is not None:
        return waiting
    if version is None:
        raise PromotionError(f"{registry.name(env)} has no @challenger: no version awaits approval")
    return Outcome(
        env,
        registry.name(env),
        version,
        "unchanged",
        f"models:/{registry.name(env)}/{version} no longer awaits approval (decided already, or replaced):"
        " nothing changed",
    )


def _decision_tags(note: str, via: str) -> dict[str, str]:
    return {"decision_note": note, "decided_via": via or "unknown", "decided_at": str(int(time.time()))}


def approve(registry: Registry, env: str, version: str | None = None, note: str = "", via: str = "") -> Outcome:
    """Make the version awaiting approval in ``env`` its champion; with ``version``, only if that one waits."""
    waiting = _pending(registry, env, version)
    if isinstance(waiting, Outcome):
        return waiting
    registry.tag_version(waiting, {"approved": "true", **_decision_tags(note, via)})
    return _make_champion(registry, env, waiting)


def reject(registry: Registry, env: str, version: str | None = None, note: str = "", via: str = "") -> Outcome:
    """Turn down the version awaiting approval in ``env``: tagged rejected, no longer ``challenger``;
    the champion stays. With ``version``, only if that one waits."""
    waiting = _pending(registry, env, version)
    if isinstance(waiting, Outcome):
        return waiting
    # Tagged before the alias goes: a retry after a failure in between still finds it waiting.
    reason = note or f"rejected for {env}"
    registry.tag_version(waiting, {"status": "rejected", "rejected_reason": reason, **_decision_tags(note, via)})
    registry.delete_alias(env, CHALLENGER)
    return Outcome(
        env, waiting.name, waiting.version, "rejected", f"{waiting.uri} rejected for {env}; @champion unchanged"
    )


def rollback(registry: Registry, env: str) -> Outcome:
    """Move ``champion`` back to ``previous``; the version rolled back from is tagged so."""
    previous = registry.at_alias(env, PREVIOUS)
    current = registry.at_alias(env, CHAMPION)
    if previous is None or current is None:
        raise PromotionError(f"{registry.name(env)} has no @previous version: nothing to roll back to")
    registry.set_alias(env, CHAMPION, previous.version)
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
