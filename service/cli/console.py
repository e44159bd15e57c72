"""What the CLI prints: verdicts, promotion outcomes, registry listings and the demo's summary."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:  # the monitor pulls in the drift statistics (scipy): `approve` and `models` need none of it
    from service.catalog import ModelView
    from service.monitor import BatchVerdict
    from service.promote import Outcome


def verdict_line(verdict: BatchVerdict) -> str:
    name = verdict.batch_uri.rsplit("/", 1)[-1]
    if verdict.quarantined:
        when = "quarantined earlier" if verdict.already_checked else "QUARANTINED"
        return f"  {name:<18} {when}: {verdict.reason.splitlines()[0]}"
    if verdict.already_checked:
        return f"  {name:<18} already checked ({'drift' if verdict.dataset_drift else 'no drift'})"
    state = "DRIFT   " if verdict.dataset_drift else "no drift"
    columns = f" [{', '.join(verdict.drifted_columns)}]" if verdict.drifted_columns else ""
    action = "→ retrain" if verdict.retrain else f"({verdict.reason})"
    return f"  {name:<18} {state} {verdict.drifted_share:>4.0%} of columns{columns} {action}"


def echo_outcome(outcome: Outcome, failures: list[str] | None = None) -> None:
    typer.echo(f"  {outcome.env:<8} {outcome.action:<18} {outcome.message}")
    for failure in failures or []:  # the move stands; the person who made it should know who was not told
        typer.secho(f"warning: {failure}", err=True, fg=typer.colors.YELLOW)


def echo_retrain(summary: Any, title: str) -> None:
    typer.echo(f"{title}: {summary.model} v{summary.version} — gate: {summary.gate}")
    for outcome in summary.outcomes:
        echo_outcome(outcome)


def echo_monitor_summary(summary: Any, show_old: bool = True) -> None:
    if summary.bootstrap is not None:
        echo_retrain(summary.bootstrap, "no champion yet: trained one on the reference")
    for change in summary.config_changes:
        typer.echo(f"  config changed: {change}; takes effect at the next retrain (driftloop retrain)")
    retrains = iter(summary.retrains)
    if len(summary.retrains) > sum(verdict.retrain for verdict in summary.verdicts):
        echo_retrain(next(retrains), "  pending retrain from an earlier pass")
    for verdict in summary.verdicts:
        if verdict.already_checked and not show_old:
            continue
        typer.echo(verdict_line(verdict))
        if verdict.retrain and summary.retrain_requested == verdict.check_run_id:
            typer.echo("  → retrain requested from the retrain deployment; later batches wait for its champion")
        elif verdict.retrain:
            echo_retrain(next(retrains), "  retrained")


def echo_fleet(reports: list[Any]) -> None:
    """The pass summary: one row per model, and each model's error in full below the table."""
    header = f"{'model':<20} {'checked':>7} {'drift':>5} {'retrained':>9} {'promoted':>8} {'quarantined':>11}  status"
    typer.echo("\n" + header)
    for report in reports:
        status = "ok" if report.exit_code == 0 else f"error (exit {report.exit_code})"
        typer.echo(
            f"{report.model:<20} {report.checked:>7} {report.drifted:>5} {report.retrained:>9} "
            f"{report.promoted:>8} {report.quarantined:>11}  {status}"
        )
    for report in reports:
        if report.error:
            typer.echo(f"{report.model} ({report.source}): {report.error}", err=True)


def echo_models(views: list[ModelView]) -> None:
    if not views:
        typer.echo("no driftloop models in this registry")
    for view in views:
        typer.echo(view.name)
        for env in view.environments:
            aliases = ", ".join(f"@{alias} v{version}" for alias, version in sorted(env.aliases.items()))
            typer.echo(f"  {env.env:<8} {env.registered_model:<22} {aliases or '(no aliases)'}")
            for version in env.versions:
                tags: dict[str, str] = version["tags"]  # type: ignore[assignment]
                typer.echo(
                    f"           v{version['version']:<4} {version['status'] or '-':<18} "
                    f"{gate_scores(tags)}  git {tags.get('git_sha', '')[:10]}{trained_on(tags)}"
                )


def trained_on(tags: dict[str, str]) -> str:
    """A version trained on a ``training.max_rows`` sample says so: its scores are of a sample's model."""
    if not tags.get("sampled_rows"):
        return ""
    return f"  trained on a sample of {int(tags['sampled_rows']):,} of {int(tags['window_rows']):,} rows"


def gate_scores(tags: dict[str, str]) -> str:
    """A version's score beside its champion's on the same holdout, as its gate compared them. Each
    version has its own (fresh) holdout, so scores of two versions are never set side by side."""
    metric, score = tags.get("metric", ""), tags.get("challenger_score", "")
    if not score:
        return "(no holdout score)"
    mine = f"{metric} {float(score):.3f}"
    holdout = f"holdout {tags['holdout_hash'][:8]}" if tags.get("holdout_hash") else "its holdout"
    if not tags.get("champion_score"):
        return f"{mine} on {holdout} (no champion to compare)"
    against = f"v{tags['champion_version']}" if tags.get("champion_version") else "the champion"
    return f"{mine} vs {against} {float(tags['champion_score']):.3f} on {holdout}"
