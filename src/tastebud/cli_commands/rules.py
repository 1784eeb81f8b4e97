"""``tastebud rules FILE``: frequent itemsets by FP-Growth and association rules, to CSV or Parquet."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tastebud.models.rules.limits import DEFAULT_MAX_ITEMSETS, DEFAULT_MAX_RULES


def _support(value: str) -> float | int:
    s = value.strip()
    try:
        if any(ch in s for ch in ".eE"):
            return float(s)
        return int(s)
    except ValueError:
        raise click.BadParameter(f"expected a fraction like 0.01 or a count like 10, got {value!r}") from None


def _sniff(path: Path, fmt: str) -> str:
    """The input format, after checking that ``path`` holds basket text (or Parquet): a saved
    model, a zip or any other binary file is refused with a one-line message."""
    import zipfile

    with open(path, "rb") as f:
        head = f.read(1 << 16)
    if head.startswith(b"PAR1") and fmt in ("auto", "parquet"):
        return "parquet"
    if fmt == "parquet":
        raise click.ClickException(f"{path} is not a Parquet file (it does not start with the Parquet magic bytes)")
    if head.startswith(b"PK\x03\x04"):
        model = False
        try:
            with zipfile.ZipFile(path) as z:
                model = "meta.json" in z.namelist()
        except (zipfile.BadZipFile, OSError):
            pass
        what = ("it looks like a tastebud model file (a zip with meta.json); `tastebud rules` mines baskets, "
                "not a fitted model") if model else "it is a zip archive"
        raise click.ClickException(f"{path} is not a basket file: {what}. Give one basket per line (.dat, .csv) "
                                   "or a Parquet table.")
    text_error = None
    if b"\x00" in head:
        text_error = f"binary file (a NUL byte at offset {head.index(bytes(1)):,})"
    else:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as e:
            if e.end < len(head) - 3:  # not just a character cut at the end of the sample
                text_error = f"binary file or not UTF-8 text (byte 0x{head[e.start]:02x} at offset {e.start:,})"
    if text_error:
        raise click.ClickException(f"{path} is not a basket file: {text_error}. Give one basket per line "
                                   "(.dat, .csv) or a Parquet table.")
    if fmt == "auto":
        return "csv" if path.suffix.lower() == ".csv" else "dat"
    return fmt


def _read(path: Path, sep: str | None, fmt: str):
    from tastebud.data.baskets import Baskets, as_baskets

    fmt = _sniff(path, fmt)
    if fmt == "parquet":
        import pandas as pd

        return as_baskets(pd.read_parquet(path))
    if sep is None and fmt == "csv":
        sep = ","
    try:
        return Baskets.from_file(path, sep=sep)
    except UnicodeDecodeError as e:
        raise click.ClickException(f"{path} is not a basket file: it is not UTF-8 text ({e.reason})") from None


#: rows shown on the screen when no --out is given
SHOWN = 50


def _limit(value: int) -> int | None:
    if value < 0:
        raise click.BadParameter(f"must be >= 0 (0: no limit), got {value}")
    return value or None


@click.command("rules")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--min-support", "min_support", default="0.01", show_default=True,
              help="fraction of baskets (0.001) or absolute count (10)")
@click.option("--min-confidence", "min_confidence", type=float, default=0.5, show_default=True)
@click.option("--metric", default="confidence", show_default=True,
              help="metric thresholded by --min-threshold (confidence, lift, leverage, conviction, zhangs_metric, "
                   "representativity, ...)")
@click.option("--min-threshold", "min_threshold", type=float, default=None,
              help="threshold on --metric (defaults to --min-confidence for confidence)")
@click.option("--max-len", "max_len", type=int, default=None, help="longest itemset")
@click.option("--single-consequent/--all-consequents", default=False, show_default=True,
              help="one-item consequents only (pyfim/Spark) or every split (mlxtend)")
@click.option("--top-k", "top_k", type=int, default=None, help="keep only the best K rules by --metric")
@click.option("--itemsets", "itemsets_only", is_flag=True, help="write the frequent itemsets instead of rules")
@click.option("--max-itemsets", "max_itemsets", type=int, default=DEFAULT_MAX_ITEMSETS, show_default=True,
              help="stop mining past this many frequent itemsets, with a message giving a --min-support that fits "
                   "(0: no limit)")
@click.option("--max-rules", "max_rules", type=int, default=DEFAULT_MAX_RULES, show_default=True,
              help="refuse to write more rules than this to --out, with a message giving the rule count and a "
                   "--min-support that fits (0: no limit). The screen shows the best 50 whatever their number.")
@click.option("--format", "fmt", type=click.Choice(["auto", "dat", "csv", "parquet"]), default="auto", show_default=True,
              help="input format: FIMI .dat (whitespace), one-basket-per-line CSV, or a Parquet table "
                   "(long transaction,item or one-hot)")
@click.option("--sep", default=None, help="item separator of the basket file (default: whitespace for .dat, ',' for .csv)")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="output .csv or .parquet, written in chunks in bounded memory (default: the best 50 on the screen)")
def command(file, min_support, min_confidence, metric, min_threshold, max_len, single_consequent, top_k,
            itemsets_only, max_itemsets, max_rules, fmt, sep, out):
    """Mine FILE (one basket per line) for frequent itemsets and association rules.

    Without --out the best 50 rules (or itemsets) are shown with the total count; --out writes
    them all, streamed: rules in mining order (or the --top-k best, sorted by --metric), itemsets
    to Parquet in mining order, to CSV by descending support."""
    from tastebud.exceptions import TastebudError
    from tastebud.models.rules.fpgrowth import FPGrowth

    try:
        max_itemsets, max_rules = _limit(max_itemsets), _limit(max_rules)
        baskets = _read(file, sep, fmt)
        fp = FPGrowth(min_support=_support(min_support), max_len=max_len, max_itemsets=max_itemsets,
                      max_rules=max_rules).fit(baskets)
        head = f"{len(baskets):,} baskets, {fp.n_itemsets_:,} frequent itemsets"
        if itemsets_only:
            _itemsets(fp, out, head)
        else:
            thr = min_confidence if min_threshold is None and metric == "confidence" else min_threshold
            if thr is None:
                raise click.UsageError(f"--min-threshold is required with --metric {metric}")
            _rules(fp, dict(metric=metric, min_threshold=thr, single_consequent=single_consequent), top_k, out, head)
    except (TastebudError, ValueError) as e:
        raise click.ClickException(str(e)) from e


def _show(df, setcols: list[str], what: str) -> None:
    import pandas as pd

    for c in setcols:
        df[c] = [",".join(sorted(map(str, s))) for s in df[c]]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        click.echo(df.to_string(index=False) if len(df) else f"(no {what})")


def _write_csv(frames, out: Path, setcols: list[str], columns: list[str]) -> int:
    """Write DataFrames one after the other to ``out`` (sets joined with commas), atomically;
    a header only when there are none."""
    import os

    import pandas as pd

    tmp = out.with_name(f".{out.name}.tastebud-tmp-{os.getpid()}")
    rows = 0
    try:
        for i, df in enumerate(frames):
            for c in setcols:
                df[c] = [",".join(sorted(map(str, s))) for s in df[c]]
            df.to_csv(tmp, index=False, mode="w" if i == 0 else "a", header=i == 0)
            rows += len(df)
        if not tmp.exists():
            pd.DataFrame(columns=columns).to_csv(tmp, index=False)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return rows


def _itemsets(fp, out: Path | None, head: str) -> None:
    if out is None:
        df = fp.itemsets(top_k=SHOWN)
        more = f" (the {SHOWN} with the highest support shown; --out FILE writes them all)" if fp.n_itemsets_ > SHOWN else ""
        click.echo(head + more, err=True)
        _show(df, ["itemsets"], "itemsets")
        return
    click.echo(head, err=True)
    if out.suffix.lower() == ".parquet":
        rows = fp.itemsets_to_parquet(out)
    else:
        rows = _write_csv([fp.itemsets(sort=True)], out, ["itemsets"], ["support", "itemsets", "count"])
    click.echo(f"wrote {rows:,} rows to {out}", err=True)


def _rules(fp, kw: dict, top_k: int | None, out: Path | None, head: str) -> None:
    from tastebud.models.rules.metrics import METRICS

    setcols = ["antecedents", "consequents"]
    if out is None:
        k = min(top_k, SHOWN) if top_k else SHOWN
        df = fp.rules(**kw, top_k=k)
        n = df.attrs["n_rules"]
        shown = f" (the best {len(df)} by {kw['metric']} shown; --out FILE.parquet writes them all)" if n > len(df) else ""
        click.echo(f"{head}, {n:,} rules{shown}", err=True)
        _show(df, setcols, "rules")
        return
    if top_k:
        df = fp.rules(**kw, top_k=top_k)
        click.echo(f"{head}, best {len(df):,} rules by {kw['metric']}", err=True)
        if out.suffix.lower() == ".parquet":
            for c in setcols:
                df[c] = [sorted(s, key=str) for s in df[c]]
            df.to_parquet(out, index=False)
            rows = len(df)
        else:
            rows = _write_csv([df], out, setcols, list(df.columns))
    else:
        n = fp.check_rule_count(**kw, where="tastebud rules", cli=True)
        click.echo(f"{head}, {n:,} rules", err=True)
        if out.suffix.lower() == ".parquet":
            rows = fp.rules_to_parquet(out, **kw)
        else:
            rows = _write_csv(fp.iter_rules(**kw), out, setcols, [*setcols, *METRICS])
    click.echo(f"wrote {rows:,} rows to {out}", err=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(command())
