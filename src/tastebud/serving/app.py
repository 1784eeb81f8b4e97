"""A small JSON HTTP API over one saved model (FastAPI).

Endpoints (all JSON):
  GET  /health                              → {"status": "ok"}
  GET  /model                               → class, params, number of users/items
  GET  /recommend/{user}?k=10&filter_seen=true
  POST /recommend          {"users": [...], "k": 10, "filter_seen": true, "items": null}
  POST /recommend_for_history {"items": [...], "k": 10}   (models that fold in new users)
  GET  /similar/{item}?k=10
  POST /predict            {"users": [...], "items": [...]}

Unknown ids answer 404 naming the id; bad arguments 422. Ids are parsed the same way in paths and
JSON bodies: when the model's ids are integers, ``"1"`` and ``1`` are the same id.

API docs work offline: ``/docs`` (Swagger UI) and ``/redoc`` serve their scripts from the
``fastapi-offline`` package (part of the ``serve`` extra), never from a CDN. Without that package
they answer with a short page pointing to the schema at ``/openapi.json``.
"""

# no `from __future__ import annotations`: FastAPI must see the request models defined in create_app

from typing import Any

import numpy as np

from ..exceptions import MissingExtraError, UnknownIdError


def _require() -> Any:
    try:
        import fastapi  # noqa: F401
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise MissingExtraError("fastapi", "serve", "the HTTP server") from e
    return fastapi


def _jsonable(a: Any) -> Any:
    if isinstance(a, np.ndarray):
        return [_jsonable(x) for x in a.tolist()]
    if isinstance(a, list):
        return [_jsonable(x) for x in a]
    if isinstance(a, float) and not np.isfinite(a):
        return None
    if isinstance(a, np.generic):
        return a.item()
    return a


def create_app(model: Any) -> Any:
    """A FastAPI app serving ``model`` (a fitted model or a path to a saved one)."""
    fastapi = _require()
    from fastapi import HTTPException
    from pydantic import BaseModel

    from ..models.base import Model

    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        model = Model.load(model)  # type: ignore[arg-type]

    int_items = getattr(getattr(model, "items_", None), "ids", np.array([])).dtype.kind == "i"
    int_users = getattr(getattr(model, "users_", None), "ids", np.array([])).dtype.kind == "i"

    def _id(v: Any, as_int: bool) -> Any:
        if as_int and isinstance(v, str):
            try:
                return int(v)
            except ValueError:
                raise HTTPException(404, f"unknown id {v!r}")
        return v

    def _ids(vs: list[Any] | None, as_int: bool) -> list[Any] | None:
        return None if vs is None else [_id(v, as_int) for v in vs]

    from .._version import __version__

    app = fastapi.FastAPI(title="tastebud", version=__version__, docs_url=None, redoc_url=None)
    _offline_docs(app)

    def _call(fn, *a, **kw):
        try:
            return fn(*a, **kw)
        except UnknownIdError as e:
            raise HTTPException(404, str(e))
        except (ValueError, TypeError, NotImplementedError) as e:
            raise HTTPException(422, str(e))

    class RecommendRequest(BaseModel):
        users: list[Any]
        k: int = 10
        filter_seen: bool = True
        items: list[Any] | None = None

    class HistoryRequest(BaseModel):
        items: list[Any]
        k: int = 10

    class PredictRequest(BaseModel):
        users: list[Any]
        items: list[Any]

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/model")
    def info() -> dict:
        out = {"class": type(model).__name__, "params": _jsonable(model.get_params())}
        for attr in ("users_", "items_"):
            m = getattr(model, attr, None)
            if m is not None:
                out[f"n_{attr[:-1]}"] = len(m)
        return out

    def _recs(users: list[Any], k: int, filter_seen: bool, items: list[Any] | None) -> dict:
        if not hasattr(model, "recommend"):
            raise HTTPException(422, f"{type(model).__name__} does not recommend for users")
        ids, sc = _call(model.recommend, users, k=k, filter_seen=filter_seen, items=items)
        return {"users": _jsonable(users), "items": _jsonable(ids), "scores": _jsonable(sc)}

    @app.get("/recommend/{user}")
    def recommend_one(user: str, k: int = 10, filter_seen: bool = True) -> dict:
        res = _recs([_id(user, int_users)], k, filter_seen, None)
        return {"user": res["users"][0], "items": res["items"][0], "scores": res["scores"][0]}

    @app.post("/recommend")
    def recommend(req: RecommendRequest) -> dict:
        return _recs(_ids(req.users, int_users), req.k, req.filter_seen, _ids(req.items, int_items))

    @app.post("/recommend_for_history")
    def recommend_for_history(req: HistoryRequest) -> dict:
        if not hasattr(model, "recommend_for_history"):
            raise HTTPException(422, f"{type(model).__name__} cannot recommend for a new history")
        ids, sc = _call(model.recommend_for_history, _ids(req.items, int_items), k=req.k)
        return {"items": _jsonable(ids), "scores": _jsonable(sc)}

    @app.get("/similar/{item}")
    def similar(item: str, k: int = 10) -> dict:
        if not hasattr(model, "similar_items"):
            raise HTTPException(422, f"{type(model).__name__} has no item similarity")
        ids, sc = _call(model.similar_items, _id(item, int_items), k=k)
        return {"item": _id(item, int_items), "items": _jsonable(ids), "scores": _jsonable(sc)}

    @app.post("/predict")
    def predict(req: PredictRequest) -> dict:
        if not hasattr(model, "predict"):
            raise HTTPException(422, f"{type(model).__name__} does not predict ratings")
        if len(req.users) != len(req.items):
            raise HTTPException(422, "users and items must have the same length")
        pred = _call(model.predict, _ids(req.users, int_users), _ids(req.items, int_items))
        return {"predictions": _jsonable(np.asarray(pred, dtype=float))}

    return app


def _offline_docs(app: Any) -> None:
    """``/docs`` and ``/redoc`` from local assets (fastapi-offline's copies of Swagger UI and ReDoc);
    without them, a page that points to ``/openapi.json`` (a CDN page would be blank offline)."""
    from fastapi.responses import HTMLResponse

    try:
        from importlib.resources import files

        static = files("fastapi_offline") / "static"
        if not (static / "swagger-ui-bundle.js").is_file():
            raise ImportError("fastapi_offline has no static assets")
    except ImportError:
        @app.get("/docs", include_in_schema=False)
        @app.get("/redoc", include_in_schema=False)
        def no_docs() -> HTMLResponse:
            return HTMLResponse("<!DOCTYPE html><title>tastebud API</title><p>Interactive docs need the "
                                "<code>fastapi-offline</code> package (<code>pip install 'tastebud[serve]'</code>). "
                                'The OpenAPI schema is at <a href="openapi.json">/openapi.json</a>.</p>')
        return
    from fastapi import Request
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    app.mount("/docs-static", StaticFiles(directory=str(static)), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(openapi_url=f"{root}/openapi.json", title="tastebud API",
                                   swagger_js_url=f"{root}/docs-static/swagger-ui-bundle.js",
                                   swagger_css_url=f"{root}/docs-static/swagger-ui.css",
                                   swagger_favicon_url=f"{root}/docs-static/favicon.png",
                                   swagger_ui_parameters={"validatorUrl": None})  # no call to validator.swagger.io

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(openapi_url=f"{root}/openapi.json", title="tastebud API",
                              redoc_js_url=f"{root}/docs-static/redoc.standalone.js",
                              redoc_favicon_url=f"{root}/docs-static/favicon.png", with_google_fonts=False)


def serve(model_path: Any, host: str = "127.0.0.1", port: int = 8000) -> None:  # pragma: no cover - blocking
    """Run the API with uvicorn until interrupted (``model_path``: a saved model's path or a fitted model)."""
    _require()
    try:
        import uvicorn
    except ImportError as e:
        raise MissingExtraError("uvicorn", "serve", "the HTTP server") from e
    uvicorn.run(create_app(model_path), host=host, port=port)
