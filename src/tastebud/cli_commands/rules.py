"""``tastebud rules FILE``: frequent itemsets by FP-Growth and association rules, to CSV or Parquet."""

from __future__ import annotations

import sys
from pathlib import Path

import click


def _support(value: str) -> float | int:
    s = value.strip()
    try:
        if any(ch in s for ch in ".eE"):
            return float(s)
        return int(s)
    except ValueError:
        raise click.BadParameter(f"expected a fraction like 0.01 or a count like 10, got {value!r}") from None


def _read(path: Path, sep: str | None, fmt: str):
    from tastebud.data.baskets import Baskets, as_baskets

    if fmt == "auto":
        suf = path.suffix.lower()
        fmt = "parquet" if suf == ".parquet" else "csv" if suf == ".csv" else "dat"
    if fmt == "parquet":
        import pandas as pd

        return as_baskets(pd.read_parquet(path))
    if sep is None and fmt == "csv":
        sep = ","
    return Baskets.from_file(path, sep=sep)


@click.command("rules")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--min-support", "min_support", default="0.01", show_default=True,
              help="fraction of baskets (0.001) or absolute count (10)")
@click.option("--min-confidence", "min_confidence", type=float, default=0.5, show_default=True)
@click.option("--metric", default="confidence", show_default=True,
              help="metric thresholded by --min-threshold (confidence, lift, leverage, conviction, zhangs_metric, ...)")
@click.option("--min-threshold", "min_threshold", type=float, default=None,
              help="threshold on --metric (defaults to --min-confidence for confidence)")
@click.option("--max-len", "max_len", type=int, default=None, help="longest itemset")
@click.option("--single-consequent/--all-consequents", default=False, show_default=True,
              help="one-item consequents only (pyfim/Spark) or every split (mlxtend)")
@click.option("--top-k", "top_k", type=int, default=None, help="keep only the best K rules by --metric")
@click.option("--itemsets", "itemsets_only", is_flag=True, help="write the frequent itemsets instead of rules")
@click.option("--format", "fmt", type=click.Choice(["auto", "dat", "csv", "parquet"]), default="auto", show_default=True,
              help="input format: FIMI .dat (whitespace), one-basket-per-line CSV, or a Parquet table "
                   "(long transaction,item or one-hot)")
@click.option("--sep", default=None, help="item separator of the basket file (default: whitespace for .dat, ',' for .csv)")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="output .csv or .parquet (default: print to stdout)")
def command(file, min_support, min_confidence, metric, min_threshold, max_len, single_consequent, top_k,
            itemsets_only, fmt, sep, out):
    """Mine FILE (one basket per line) for frequent itemsets and association rules."""
    import pandas as pd

    from tastebud.exceptions import TastebudError
    from tastebud.models.rules.fpgrowth import FPGrowth

    try:
        baskets = _read(file, sep, fmt)
        fp = FPGrowth(min_support=_support(min_support), max_len=max_len).fit(baskets)
        if itemsets_only:
            df = fp.itemsets(sort=True)
            click.echo(f"{len(baskets)} baskets, {fp.n_itemsets_} frequent itemsets", err=True)
            setcols = ["itemsets"]
        else:
            thr = min_confidence if min_threshold is None and metric == "confidence" else min_threshold
            if thr is None:
                raise click.UsageError(f"--min-threshold is required with --metric {metric}")
            df = fp.rules(metric=metric, min_threshold=thr, single_consequent=single_consequent, top_k=top_k,
                          sort=True)
            click.echo(f"{len(baskets)} baskets, {fp.n_itemsets_} frequent itemsets, {len(df)} rules", err=True)
            setcols = ["antecedents", "consequents"]
    except (TastebudError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    if out is not None and out.suffix.lower() == ".parquet":
        for c in setcols:
            df[c] = [sorted(map(str, s)) for s in df[c]]
        df.to_parquet(out, index=False)
    else:
        for c in setcols:
            df[c] = [",".join(sorted(map(str, s))) for s in df[c]]
        if out is None:
            with pd.option_context("display.width", 200, "display.max_columns", 20):
                click.echo(df.head(50).to_string(index=False) if len(df) else "(no rules)")
        else:
            df.to_csv(out, index=False)
    if out is not None:
        click.echo(f"wrote {len(df)} rows to {out}", err=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(command())
