"""`driftloop drift`: an ad-hoc drift check of two files, with exit codes as diff's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from service.cli.app import JsonOption, app, fail, show_traceback


@app.command()
def drift(
    reference: Annotated[str, typer.Option(help="Reference data: csv or parquet, any fsspec URI.")],
    current: Annotated[str, typer.Option(help="Current batch (a file, or a glob read as one batch).")],
    report: Annotated[Path | None, typer.Option(help="Write the Evidently HTML report here.")] = None,
    ignore: Annotated[list[str] | None, typer.Option(help="Column to leave out (repeatable).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Check CURRENT for drift against REFERENCE. Exit 0: no drift, 1: drift, 2: error."""
    try:
        from service.adhoc import check_files
        from service.settings import DriftSection

        # Without --report, Evidently is neither imported nor run: the verdict needs neither.
        result = check_files(reference, current, ignore or [], DriftSection(), with_report=report is not None)
        if report is not None:
            report.parent.mkdir(parents=True, exist_ok=True)
            report.write_text(result.html)
    except Exception as exc:  # 0 and 1 are verdicts: any failure, ours or not, must read as neither
        from service.fleet import one_line

        show_traceback(exc)
        fail(one_line(exc))
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
