"""The ``tastebud`` command line.

    tastebud datasets list|info NAME
    tastebud models [MODEL]
    tastebud fit MODEL (--data FILE | --dataset NAME) --out PATH [-p key=value ...]
    tastebud recommend PATH --user ID [-k 10] [--json]
    tastebud similar PATH --item ID [-k 10]
    tastebud predict PATH --user ID --item ID
    tastebud evaluate --dataset NAME --models mf,svdpp,als --report DIR
    tastebud serve PATH [--host 127.0.0.1] [--port 8000]
    tastebud rules FILE --min-support S --min-confidence C          (from cli_commands/)

Models come from the registry (``tastebud.models.registry``), so new models need no CLI change.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import pkgutil
import sys
import time
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tastebud")
@click.option("-q", "--quiet", is_flag=True, help="Only errors; no progress bars.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(quiet: bool, verbose: bool) -> None:
    """tastebud: recommender systems from matrix factorization to transformers."""
    level = logging.ERROR if quiet else logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
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
    except KeyError as e:
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


@main.command("fit")
@click.argument("model")
@click.option("--data", "data_path", type=click.Path(exists=True, dir_okay=False), help="CSV/TSV/Parquet (user,item[,rating,timestamp]), basket or sequence file.")
@click.option("--dataset", help="A registered dataset name (see `tastebud datasets list`).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to save the fitted model.")
@click.option("-p", "--param", "params", multiple=True, help="Hyperparameter key=value (JSON values), repeatable.")
@click.option("--user-col", default="user", show_default=True)
@click.option("--item-col", default="item", show_default=True)
@click.option("--rating-col", default="rating", show_default=True)
@click.option("--timestamp-col", default="timestamp", show_default=True)
@click.option("--sep", default=None, help="Field separator (default: by file extension).")
def fit_cmd(model: str, data_path: str | None, dataset: str | None, out: str, params: tuple[str, ...],
            user_col: str, item_col: str, rating_col: str, timestamp_col: str, sep: str | None) -> None:
    """Fit MODEL on a file or dataset and save it."""
    from .model_io import load_training_data
    from .models import registry

    cls = _model_class(model)
    task, _ = registry.info(model)
    hyper = _parse_params(params)
    _check_params(model, cls, hyper)
    try:
        data = load_training_data(task, data_path, dataset, user_col, item_col, rating_col, timestamp_col, sep)
        est = cls(**hyper)
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
@click.option("--dataset", required=True, help="Registered dataset name.")
@click.option("--models", "model_names", required=True, help="Comma-separated registered model names.")
@click.option("--report", "report_dir", default=None, type=click.Path(file_okay=False), help="Write report (markdown, CSV, plots) here.")
@click.option("--quick", is_flag=True, help="Small settings (each model's demo_params).")
@click.option("-k", default=10, show_default=True, type=int)
def evaluate_cmd(dataset: str, model_names: str, report_dir: str | None, quick: bool, k: int) -> None:
    """Fit and evaluate models on a dataset with the standard protocol for their task."""
    from .evaluation.runner import run_comparison

    names = [m.strip() for m in model_names.split(",") if m.strip()]
    try:
        tables = run_comparison(dataset, names, quick=quick, k=k, report_dir=report_dir)
    except (KeyError, ValueError, ImportError) as e:
        raise click.ClickException(str(e).strip("'\""))
    for title, df in tables.items():
        click.echo(f"\n## {title}\n")
        click.echo(df.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    if report_dir:
        click.echo(f"\nreport written to {report_dir}")


@main.command("serve")
@click.argument("model_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def serve_cmd(model_path: str, host: str, port: int) -> None:
    """Serve a saved model over HTTP (needs the `serve` extra)."""
    from .serving.app import serve

    serve(model_path, host=host, port=port)


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
