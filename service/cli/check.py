"""`driftloop drift`: an ad-hoc drift check of two files, with exit codes as diff's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from service.cli.app import JsonOption, app, show_traceback


@app.command()
def drift(
    reference: Annotated[str, typer.Option(help="Reference data: csv or parquet, any fsspec URI.")],
    current: Annotated[str, typer.Option(help="Current batch (a file, or a glob read as one batch).")],
    report: Annotated[Path | None, typer.Option(help="Write the Evidently HTML report here.")] = None,
    ignore: Annotated[list[str] | None, typer.Option(help="Column to leave out (repeatable).")] = None,
    engine: Annotated[
        str, typer.Option(help="fast, evidently, or dask: the tests on a Dask cluster, whose workers read the files.")
    ] = "fast",
    dask_scheduler: Annotated[
        str | None, typer.Option(help="--engine dask: the scheduler's address; default $DRIFTLOOP_DASK_SCHEDULER.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check CURRENT for drift against REFERENCE. Exit 0: no drift, 1: drift, 2: bad input, 3: a service
    (the storage, the Dask cluster) did not answer."""
    try:
        from service.adhoc import check_files

        settings = _drift_settings(engine, dask_scheduler)
        # Without --report, Evidently is neither imported nor run: the verdict needs neither.
        result = check_files(reference, current, ignore or [], settings, with_report=report is not None)
        if report is not None:
            report.parent.mkdir(parents=True, exist_ok=True)
            report.write_text(result.html)
    except Exception as exc:  # 0 and 1 are verdicts: any failure, ours or not, must read as neither
        from service.fleet import exit_code_of, one_line

        show_traceback(exc)
        typer.secho(f"error: {one_line(exc)}", err=True, fg=typer.colors.RED)
        raise typer.Exit(exit_code_of(exc)) from None
    if as_json:
        typer.echo(json.dumps({**result.to_dict(), "report": str(report) if report else None}, indent=2))
    else:
        verdict = "DRIFT" if result.dataset_drift else "no drift"
        typer.echo(
            f"{verdict}: {len(result.drifted_columns())} of {len(result.columns)} columns drifted "
            f"({result.drifted_share:.0%}, dataset threshold {result.drift_share_threshold:.0%})"
        )
        for column in result.columns:
            mark = "drift" if column.drifted else "ok"
            typer.echo(
                f"  {column.column:<24} {mark:<6} {column.stattest} = {column.score:.4g} "
                f"(threshold {column.threshold:.4g})"
            )
        if report is not None:
            typer.echo(f"report: {report}")
    raise typer.Exit(1 if result.dataset_drift else 0)


def _drift_settings(engine: str, dask_scheduler: str | None):  # -> DriftSection (imported lazily)
    from pydantic import ValidationError

    from service.errors import ConfigError
    from service.settings import DriftSection

    try:
        return DriftSection(engine=engine, dask_scheduler=dask_scheduler)
    except ValidationError:
        raise ConfigError(f"--engine {engine!r} is not an engine: expected fast, evidently or dask") from None
