"""``tastebud retrain DIR --model NAME``: a new version of a served model from its original
training data plus the service's event log, written where the running service picks it up.

The served version's class and hyperparameters are read from its file; the training data are
given again (``--data FILE`` or ``--dataset NAME``, as for ``tastebud fit``) and the logged events
(``DIR/events.db`` or ``--events PATH``) are appended to them: for rating/top-N models as rows
(user, item, weight as the rating/value, timestamp), for sequence models at the end of each
user's sequence in time order, for basket models as one basket per user. The new version is
saved atomically as ``DIR/NAME/<highest version + 1>.tb`` (a model served as ``DIR/NAME.tb`` is
version 0), and the service swaps it in on its next look at the folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


def _with_events(task: str, data: Any, events: list[tuple[Any, Any, float, float]], skipped: list[int]) -> Any:
    import pandas as pd

    from tastebud.data import Interactions, Sequences

    if not events:
        return data
    ev = pd.DataFrame(events, columns=["user", "item", "weight", "timestamp"])
    if task in ("rating", "topn"):
        base = data.to_frame()
        has_ts = "timestamp" in base.columns
        val = "rating" if "rating" in base.columns else ("weight" if "weight" in base.columns else None)
        for col in ("user", "item"):
            ev = _as_kind(ev, col, base[col].dtype.kind, skipped)
        add = pd.DataFrame({"user": ev["user"], "item": ev["item"]})
        if val is not None:
            add[val] = ev["weight"].astype(float)
        if has_ts:
            add["timestamp"] = ev["timestamp"].astype(base["timestamp"].dtype if base["timestamp"].dtype.kind in "iuf" else float)
        df = pd.concat([base, add], ignore_index=True)
        dup = "last" if has_ts and task == "rating" else ("mean" if task == "rating" else "sum")
        return Interactions.from_frame(df, rating=val, timestamp="timestamp" if has_ts else None, duplicates=dup)
    if task == "sequence":
        seqs = data if isinstance(data, Sequences) else Sequences.from_frame(data)
        ev = _as_kind(ev, "user", seqs.users.ids.dtype.kind, skipped)
        ev = _as_kind(ev, "item", seqs.items.ids.dtype.kind, skipped)
        lists = {u: list(seqs.items.ids[seqs.indices[seqs.indptr[j]:seqs.indptr[j + 1]]])
                 for j, u in enumerate(seqs.users.ids.tolist())}
        for u, g in ev.sort_values("timestamp", kind="stable").groupby("user", sort=False):
            lists.setdefault(u, []).extend(g["item"].tolist())
        return lists
    if task == "baskets":
        ev = _as_kind(ev, "item", data.items.ids.dtype.kind, skipped)
        extra = [g["item"].tolist() for _, g in ev.groupby("user", sort=False)]
        return data.to_lists() + extra
    raise click.ClickException(f"retrain does not know how to add events to {task!r} data")


def _as_kind(df: Any, col: str, kind: str, skipped: list[int]) -> Any:
    """``df`` with column ``col`` of the training data's id type; rows whose id cannot have it
    (a logged "abc" against integer ids) are dropped and counted in ``skipped``."""
    import pandas as pd

    if kind not in "iu":
        return df.assign(**{col: df[col].astype(str)})
    num = pd.to_numeric(df[col].astype(str), errors="coerce")
    ok = (num.notna() & (num == num.round())).to_numpy()
    skipped.append(int((~ok).sum()))
    return df[ok].assign(**{col: num[ok].astype("int64")})


def _next_version(folder: Path, name: str) -> tuple[Path, Path]:
    """(file of the version to retrain from, path of the new version)."""
    from tastebud.serving.registry import SUFFIX, scan

    found = scan(folder)
    if name not in found:
        raise click.ClickException(f"{folder}: no model named {name!r} (models: {', '.join(sorted(found)) or 'none'})")
    version, path = found[name]
    sub = folder / name
    nums = [int(p.name[: -len(SUFFIX)]) for p in sub.glob(f"*{SUFFIX}") if p.name[: -len(SUFFIX)].isdigit()] if sub.is_dir() else []
    nxt = max(nums + [int(version) if version.isdigit() else 0]) + 1
    return path, sub / f"{nxt}{SUFFIX}"


@click.command("retrain")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--model", "name", required=True, help="Name of the served model to rebuild.")
@click.option("--data", "data_path", type=click.Path(exists=True, dir_okay=False), help="The original training file.")
@click.option("--dataset", help="The original registered dataset.")
@click.option("--events", "events_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Event log (default: FOLDER/events.db; none is fine).")
@click.option("--user-col", default="user", show_default=True)
@click.option("--item-col", default="item", show_default=True)
@click.option("--rating-col", default="rating", show_default=True)
@click.option("--timestamp-col", default="timestamp", show_default=True)
@click.option("--sep", default=None)
def command(folder: Path, name: str, data_path: str | None, dataset: str | None, events_path: str | None,
            user_col: str, item_col: str, rating_col: str, timestamp_col: str, sep: str | None) -> None:
    """Fit a new version of model NAME in FOLDER on its data plus the logged events."""
    import time

    from tastebud.exceptions import TastebudError
    from tastebud.model_io import load_training_data
    from tastebud.models import registry
    from tastebud.models.base import Model
    from tastebud.persistence import read_model_file
    from tastebud.serving.events import read_events

    src, out = _next_version(folder, name)
    try:
        meta, _ = read_model_file(src)
        cls = registry.get(meta["class"])
        task, _ = registry.info(meta["class"])
        data = load_training_data(task, data_path, dataset, user_col, item_col, rating_col, timestamp_col, sep)
        ev_file = Path(events_path) if events_path else folder / "events.db"
        events = read_events(ev_file) if ev_file.exists() else []
        skipped: list[int] = []
        data = _with_events(task, data, events, skipped)
        model = cls(**meta["params"])
        t0 = time.perf_counter()
        model.fit(data)
        secs = time.perf_counter() - t0
        out.parent.mkdir(parents=True, exist_ok=True)
        saved = model.save(out)
    except (TastebudError, ValueError, KeyError, TypeError, FileNotFoundError, ImportError) as e:
        raise click.ClickException(str(e).strip("'\""))
    assert isinstance(Model.load(saved), cls)  # the file the service will load reads back
    sk = sum(skipped)
    if sk:
        click.echo(f"skipped {sk} logged event(s) whose user/item id does not have the training data's id type", err=True)
    click.echo(f"retrained {name} ({cls.__name__}) on the data + {len(events) - sk} logged events in {secs:.2f}s; "
               f"saved {saved}")
