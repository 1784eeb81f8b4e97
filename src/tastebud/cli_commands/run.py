"""``tastebud run EXPERIMENT.toml``: run an experiment file (data, split, models with
hyperparameters or search spaces, metrics, seeds), record everything needed to repeat it, and
write the tables (and with ``--report``, the HTML page)."""

from __future__ import annotations

import time
from pathlib import Path

import click


@click.command("run")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: runs/<experiment name>). Finished models and tuning trials there are "
                   "reused when the run is started again.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write the self-contained HTML report (report.html) into this folder.")
@click.option("--fresh", is_flag=True, help="Ignore results and trials of earlier runs in the output folder.")
@click.option("--check", is_flag=True, help="Only validate the file and print the resolved configuration.")
def command(config: Path, out_dir: Path | None, report_dir: Path | None, fresh: bool, check: bool) -> None:
    """Run the experiment described by CONFIG (TOML; see docs/experiments.md)."""
    import json

    from tastebud.evaluation.config import load_config

    exp = load_config(config)
    if check:
        click.echo(json.dumps(exp.resolved(), indent=1))
        return
    from tastebud.evaluation.experiment import run_experiment

    out = out_dir or Path("runs") / exp.name
    t0 = time.perf_counter()
    res = run_experiment(exp, out, report_dir=report_dir, fresh=fresh)
    for title, df in res.tables.items():
        click.echo(f"\n## {title}\n")
        click.echo(df.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    click.echo(f"\n{len(res.runs)} model(s) in {time.perf_counter() - t0:.1f} s; results in {out}"
               + (f", report {Path(report_dir) / 'report.html'}" if report_dir else ""))
