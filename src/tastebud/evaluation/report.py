"""Write comparison tables as a small report: markdown, CSV and (with matplotlib) bar plots."""

from __future__ import annotations

import datetime as _dt
import logging
import platform
import re
from pathlib import Path

import pandas as pd

logger = logging.getLogger("tastebud")


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")


def _markdown(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        cells = [f"{v:.4f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(tables: dict[str, pd.DataFrame], out_dir: str | Path, title: str = "tastebud comparison",
                 notes: list[str] | None = None) -> Path:
    """Write ``README.md`` (all tables), one CSV per table and, if matplotlib is installed, one PNG
    per table plotting each metric column and the fit time per model. Returns the folder."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = [f"# {title}", "", f"Generated {_dt.datetime.now().isoformat(timespec='seconds')} on "
          f"{platform.node() or 'unknown host'} ({platform.machine()}, Python {platform.python_version()}).", ""]
    for n in notes or []:
        md.append(f"- {n}")
    if notes:
        md.append("")
    for name, df in tables.items():
        slug = _slug(name)
        df.to_csv(out / f"{slug}.csv", index=False)
        md += [f"## {name}", "", _markdown(df), ""]
        png = _plot(df, out / f"{slug}.png", name)
        if png is not None:
            md += [f"![{name}]({png.name})", ""]
    (out / "README.md").write_text("\n".join(md))
    return out


def _plot(df: pd.DataFrame, path: Path, title: str) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.info("matplotlib not installed: report without plots (pip install 'tastebud[report]')")
        return None
    if "model" not in df.columns:
        return None
    metrics = [c for c in df.columns if c != "model" and pd.api.types.is_numeric_dtype(df[c])]
    if not metrics:
        return None
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.2), squeeze=False)
    for ax, col in zip(axes[0], metrics):
        ax.barh(df["model"].astype(str), df[col].astype(float), color="#4c72b0")
        ax.set_title(col, fontsize=9)
        ax.tick_params(labelsize=8)
        ax.invert_yaxis()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
