"""The ``tastebud`` command line.

    tastebud datasets list|info NAME
    tastebud models [MODEL]
    tastebud fit MODEL (--data FILE | --dataset NAME) --out PATH [-p key=value ...] [column options]
    tastebud recommend PATH --user ID [-k 10] [--json]
    tastebud similar PATH --item ID [-k 10]
    tastebud predict PATH --user ID --item ID
    tastebud evaluate (--dataset NAME | --data FILE) --models mf,svdpp,als [--report DIR] [column options]
    tastebud serve PATH|DIR [--host 127.0.0.1] [--port 8000] [--items items.csv] [--api-key KEY]
    tastebud retrain DIR --model NAME (--data FILE | --dataset NAME)   (from cli_commands/)
    tastebud rules FILE --min-support S --min-confidence C          (from cli_commands/)

Models come from the registry (``tastebud.models.registry``), so new models need no CLI change.
Errors print one line naming the cause (``Error: ...``), never a traceback (``-v`` adds one to the log).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import pkgutil
import sys
import time
import zipfile
from typing import Any

import click

from ._version import __version__


def _parse_value(v: str) -> Any:
    try:
        return json.loads(v)
    except json.JSONDecodeError:
        return v


def _parse_params(items: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for it in items:
        if "=" not in it:
            raise click.BadParameter(f"expected key=value, got {it!r}", param_hint="-p/--param")
        k, v = it.split("=", 1)
        out[k.strip()] = _parse_value(v.strip())
    return out


def _parse_id(v: str) -> Any:
    try:
        return int(v)
    except ValueError:
        return v


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, default=lambda x: x.item() if hasattr(x, "item") else str(x)))


# errors a user can cause (bad files, ids, arguments, missing extras): one line, never a traceback
_USER_ERRORS = (ValueError, KeyError, TypeError, LookupError, OSError, ImportError, NotImplementedError,
                FloatingPointError, MemoryError, zipfile.BadZipFile)


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        from .exceptions import TastebudError

        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except (TastebudError, *_USER_ERRORS) as e:
            logging.getLogger("tastebud").debug("command failed", exc_info=True)
            msg = e.args[0] if isinstance(e, KeyError) and len(e.args) == 1 and isinstance(e.args[0], str) else str(e)
            raise click.ClickException(" ".join(msg.split()) or type(e).__name__) from e


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tastebud")
@click.option("-q", "--quiet", is_flag=True, help="Only errors; no progress bars.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(quiet: bool, verbose: bool) -> None:
    """tastebud: recommender systems from matrix factorization to transformers."""
    level = logging.ERROR if quiet else logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    import warnings

    def _one_line(message: Any, category: Any, *_: Any, **__: Any) -> None:
        logging.getLogger("tastebud").warning("%s", message)

    warnings.showwarning = _one_line  # library warnings (e.g. duplicate ratings): one line each, no source
    if quiet:
        os.environ["TQDM_DISABLE"] = "1"


# ---------------------------------------------------------------- datasets
@main.group()
def datasets() -> None:
    """List and describe the registered datasets."""


@datasets.command("list")
def datasets_list() -> None:
    from .data import datasets as ds

    for name in ds.names():
        click.echo(f"{name:28s} {ds.info(name).get('description', '')}")


@datasets.command("info")
@click.argument("name")
def datasets_info(name: str) -> None:
    from .data import datasets as ds

    try:
        info = ds.info(name)
    except (KeyError, ValueError) as e:
        raise click.ClickException(str(e).strip("'\""))
    _echo_json(info)


# ---------------------------------------------------------------- models
@main.command("models")
@click.argument("model", required=False)
def models_cmd(model: str | None) -> None:
    """List registered models (name, task, availability), or MODEL's parameters with defaults."""
    from .models import registry

    if model is None:
        for name in registry.names():
            task, desc = registry.info(name)
            ok = "" if registry.available(name) else "  [not installed]"
            click.echo(f"{name:14s} {task:9s} {desc}{ok}")
        return
    cls = _model_class(model)
    task, desc = registry.info(model)
    click.echo(f"{model}: {cls.__name__} — {desc} (task: {task})")
    rows = [(name, repr(default), doc) for name, default, doc in cls.param_table()]
    if not rows:
        click.echo("no parameters")
    else:
        click.echo("parameters (set with `tastebud fit MODEL -p name=value`):")
        w1 = max(len(r[0]) for r in rows)
        w2 = min(max(len(r[1]) for r in rows), 14)
        for name, default, doc in rows:
            click.echo(f"  {name:{w1}s}  {default:{w2}s}  {doc}".rstrip())
    if cls.renamed_params:
        old = ", ".join(f"{o} → {n}" for o, n in cls.renamed_params.items())
        click.echo(f"deprecated names (still accepted, with a warning): {old}")


def _model_class(model: str) -> type:
    from .models import registry

    try:
        return registry.get(model)
    except KeyError as e:
        raise click.ClickException(str(e).strip("'\""))
    except ImportError as e:
        raise click.ClickException(str(e))


def _check_params(model: str, cls: type, params: dict[str, Any]) -> None:
    """Unknown ``-p`` names: an error that lists the model's parameters."""
    valid = cls._param_names()
    bad = [k for k in params if k not in valid and k not in cls.renamed_params]
    if bad:
        s = "s" if len(bad) > 1 else ""
        raise click.ClickException(f"unknown parameter{s} {', '.join(map(repr, bad))} for {model}; valid parameters: "
                                   f"{', '.join(valid)} (see `tastebud models {model}`)")


def _column_options(f: Any) -> Any:
    """The options that say how to read a data file (shared by ``fit`` and ``evaluate``)."""
    opts = [
        click.option("--user-col", default="user", show_default=True),
        click.option("--item-col", default="item", show_default=True),
        click.option("--rating-col", default="rating", show_default=True,
                     help="Explicit ratings (used when the column exists)."),
        click.option("--weight-col", default=None,
                     help="Implicit weights/counts instead of ratings (duplicates are summed)."),
        click.option("--timestamp-col", default="timestamp", show_default=True),
        click.option("--sep", default=None, callback=lambda c, p, v: _unescape(v),
                     help="Field separator (default: by file extension); '\\t' is a tab."),
        click.option("--format", "fmt", type=click.Choice(["auto", "table", "pairs", "baskets"]), default="auto",
                     show_default=True, help="table: header with user/item columns (or Parquet); pairs: "
                     "'user item' lines in time order; baskets: one basket per line."),
        click.option("--duplicates", type=click.Choice(["sum", "mean", "max", "first", "last", "raise"]), default=None,
                     help="Repeated (user, item) rows. Default: latest (else mean) rating for ratings, sum for weights."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _unescape(sep: str | None) -> str | None:
    from .model_io import unescape_sep

    return unescape_sep(sep)


@main.command("fit")
@click.argument("model")
@click.option("--data", "data_path", type=click.Path(exists=True, dir_okay=False), help="CSV/TSV/Parquet (user,item[,rating,timestamp]), basket or sequence file.")
@click.option("--dataset", help="A registered dataset name (see `tastebud datasets list`).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to save the fitted model.")
@click.option("-p", "--param", "params", multiple=True, help="Hyperparameter key=value (JSON values), repeatable.")
@_column_options
def fit_cmd(model: str, data_path: str | None, dataset: str | None, out: str, params: tuple[str, ...],
            user_col: str, item_col: str, rating_col: str, weight_col: str | None, timestamp_col: str,
            sep: str | None, fmt: str, duplicates: str | None) -> None:
    """Fit MODEL on a file or dataset and save it."""
    from .model_io import load_training_data
    from .models import registry

    cls = _model_class(model)
    task, _ = registry.info(model)
    hyper = _parse_params(params)
    _check_params(model, cls, hyper)
    try:
        kw = dict(hyper)
        data = load_training_data(task, data_path, dataset, user_col, item_col, rating_col, timestamp_col, sep,
                                  weight=weight_col, duplicates=duplicates, fmt=fmt,
                                  accepts_baskets=getattr(cls, "accepts_baskets", False))
        from .data import Baskets

        if isinstance(data, Baskets) and task == "sequence" and "mode" in cls().get_params():
            kw.setdefault("mode", "basket")  # baskets: the whole basket is the context (docs/item2vec.md)
        est = cls(**kw)
        t0 = time.perf_counter()
        est.fit(data)
        secs = time.perf_counter() - t0
        path = est.save(out)
    except (ValueError, KeyError, TypeError, FileNotFoundError) as e:
        raise click.ClickException(str(e))
    click.echo(f"fitted {model} in {secs:.2f}s; saved to {path}")


def _load_model(path: str) -> Any:
    from .models.base import Model

    try:
        return Model.load(path)
    except (FileNotFoundError, ValueError) as e:
        raise click.ClickException(str(e))


@main.command("recommend")
@click.argument("model_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--user", "users", multiple=True, help="User id (repeatable).")
@click.option("--history", default=None, help="Comma-separated item ids: recommend for this history (models that fold in).")
@click.option("-k", default=10, show_default=True, type=int)
@click.option("--include-seen", is_flag=True, help="Do not filter the user's training items.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def recommend_cmd(model_path: str, users: tuple[str, ...], history: str | None, k: int, include_seen: bool, as_json: bool) -> None:
    """Top-k recommendations from a saved model."""
    m = _load_model(model_path)
    try:
        if history is not None:
            if not hasattr(m, "recommend_for_history"):
                raise click.ClickException(f"{type(m).__name__} cannot recommend for a new history")
            hist = [_parse_id(x.strip()) for x in history.split(",") if x.strip()]
            ids, scores = m.recommend_for_history(hist, k=k)
            rows = [("history", ids, scores)]
        else:
            if not users:
                raise click.ClickException("give --user ID (repeatable) or --history")
            uid = [_parse_id(u) for u in users]
            ids, scores = m.recommend(uid, k=k, filter_seen=not include_seen)
            rows = list(zip(uid, ids, scores))
    except KeyError as e:
        raise click.ClickException(str(e).strip("'\""))
    except ValueError as e:
        raise click.ClickException(str(e))
    if as_json:
        _echo_json([{"user": u, "items": list(i), "scores": [float(s) for s in sc]} for u, i, sc in rows])
        return
    for u, i, sc in rows:
        click.echo(f"user {u}:")
        for rank, (item, s) in enumerate(zip(i, sc), 1):
            click.echo(f"  {rank:3d}. {item}\t{float(s):.4f}")


@main.command("similar")
@click.argument("model_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--item", required=True)
@click.option("-k", default=10, show_default=True, type=int)
def similar_cmd(model_path: str, item: str, k: int) -> None:
    """Items most similar to ITEM."""
    m = _load_model(model_path)
    try:
        ids, scores = m.similar_items(_parse_id(item), k=k)
    except (KeyError, ValueError, NotImplementedError) as e:
        raise click.ClickException(str(e).strip("'\""))
    for rank, (i, s) in enumerate(zip(ids, scores), 1):
        click.echo(f"{rank:3d}. {i}\t{float(s):.4f}")


@main.command("predict")
@click.argument("model_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--user", required=True)
@click.option("--item", required=True)
def predict_cmd(model_path: str, user: str, item: str) -> None:
    """Predicted rating of USER for ITEM."""
    m = _load_model(model_path)
    if not hasattr(m, "predict"):
        raise click.ClickException(f"{type(m).__name__} does not predict ratings")
    click.echo(f"{float(m.predict([_parse_id(user)], [_parse_id(item)])[0]):.4f}")


@main.command("evaluate")
@click.option("--dataset", default=None, help="Registered dataset name.")
@click.option("--data", "data_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Your own file (the same forms and column options as `fit`).")
@click.option("--models", "model_names", required=True, help="Comma-separated registered model names.")
@click.option("--report", "report_dir", default=None, type=click.Path(file_okay=False), help="Write report (markdown, CSV, plots) here.")
@click.option("--quick", is_flag=True, help="Small settings (each model's demo_params).")
@click.option("-k", default=10, show_default=True, type=int)
@_column_options
def evaluate_cmd(dataset: str | None, data_path: str | None, model_names: str, report_dir: str | None, quick: bool,
                 k: int, user_col: str, item_col: str, rating_col: str, weight_col: str | None, timestamp_col: str,
                 sep: str | None, fmt: str, duplicates: str | None) -> None:
    """Fit and evaluate models on a dataset or a file with the standard protocol for their task.
    Models that do not apply to the data are listed with the reason."""
    from .evaluation.runner import run_comparison

    if (dataset is None) == (data_path is None):
        raise click.UsageError("give exactly one of --dataset NAME or --data FILE")
    names = [m.strip() for m in model_names.split(",") if m.strip()]
    if data_path is not None:
        from .model_io import load_dataset_file

        data: Any = load_dataset_file(data_path, user_col, item_col, rating_col, timestamp_col, sep,
                                      weight=weight_col, duplicates=duplicates, fmt=fmt)
    else:
        data = dataset
    try:
        tables = run_comparison(data, names, quick=quick, k=k, report_dir=report_dir)
    except (KeyError, ValueError, ImportError) as e:
        raise click.ClickException(str(e).strip("'\""))
    for title, df in tables.items():
        click.echo(f"\n## {title}\n")
        click.echo(df.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    if report_dir:
        click.echo(f"\nreport written to {report_dir}")


@main.command("serve")
@click.argument("model_path", type=click.Path(exists=True))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--default", "default_model", default=None, help="Model answering requests without ?model= (default: the first name).")
@click.option("--items", "items_table", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Item metadata table (CSV/TSV/Parquet; an `item` column or the first column holds the ids).")
@click.option("--dataset", default=None, help="Take item metadata from this registered dataset's item table.")
@click.option("--events", "events_path", default=None, type=click.Path(dir_okay=False),
              help="SQLite event log (default: DIR/events.db when serving a folder).")
@click.option("--no-events", is_flag=True, help="Turn the event log off.")
@click.option("--api-key", default=None, envvar="TASTEBUD_API_KEY", help="Require this key (X-API-Key) on event endpoints [env TASTEBUD_API_KEY].")
@click.option("--cors-origin", "cors", multiple=True, help="Allow this origin by CORS (repeatable; none by default).")
@click.option("--poll", default=2.0, show_default=True, type=float, help="Seconds between looks at the model folder (0: never).")
@click.option("--limit", "limit_items", multiple=True, help="Override an input limit, name=value (see docs/serving.md).")
@click.option("--graceful", default=3, show_default=True, type=int, help="Seconds in-flight requests get on SIGTERM.")
@click.option("--threads", default=1, show_default=True, type=int, help="Kernel threads per request (requests run concurrently).")
def serve_cmd(model_path: str, host: str, port: int, default_model: str | None, items_table: str | None,
              dataset: str | None, events_path: str | None, no_events: bool, api_key: str | None, cors: tuple[str, ...],
              poll: float, limit_items: tuple[str, ...], graceful: int, threads: int) -> None:
    """Serve a saved model, or a folder of models (DIR/NAME.tb, DIR/NAME/VERSION.tb), over HTTP
    (needs the `serve` extra)."""
    from .serving.app import limit_threads, serve

    limit_threads(threads)  # before anything imports numba
    if os.path.isfile(model_path):
        _load_model(model_path)  # one file: a bad file is reported before the server starts
    events: Any = False if no_events else (events_path or "auto")
    try:
        serve(model_path, host=host, port=port, graceful_s=graceful, threads=threads, default=default_model, items=items_table,
              dataset=dataset, events=events, api_key=api_key, cors_origins=cors, poll_s=poll,
              limits=_parse_params(limit_items), log_level=logging.getLevelName(logging.getLogger().level).lower())
    except (ValueError, FileNotFoundError, KeyError) as e:
        raise click.ClickException(str(e).strip("'\""))


def _register_plugins() -> None:
    from . import cli_commands

    for mod in pkgutil.iter_modules(cli_commands.__path__):
        try:
            m = importlib.import_module(f"{cli_commands.__name__}.{mod.name}")
        except ImportError as e:  # a plugin whose extra is missing must not break the CLI
            logging.getLogger("tastebud").debug("CLI plugin %s not loaded: %s", mod.name, e)
            continue
        cmd = getattr(m, "command", None)
        if isinstance(cmd, click.Command) and cmd.name not in main.commands:
            main.add_command(cmd)


_register_plugins()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
