"""The recommendation service (FastAPI): several models behind one process, live events,
explanations, item metadata, a web page, limits and metrics. See docs/serving.md.

Endpoints (JSON unless said otherwise; ``?model=NAME`` selects a model on every model endpoint,
the default model otherwise):

  GET  /                                    the page (static HTML/JS/CSS, no build step)
  GET  /health                              {"status": "ok"}
  GET  /models                              served models, versions, capabilities, failed loads
  GET  /model                               class, params, number of users/items of one model
  GET  /recommend/{user}?k=10&filter_seen=true&explain=false
  POST /recommend            {"users": [...], "k": 10, "filter_seen": true, "items": null, "explain": false}
  POST /recommend_for_history {"items": [...], "k": 10, "weights": null, "explain": false}
  GET  /similar/{item}?k=10
  POST /predict              {"users": [...], "items": [...]}
  POST /rules                {"basket": [...], "k": 10, "explain": false}      (RuleRecommender)
  GET  /items/search?q=star&limit=20        titles / metadata (or ids when no table is given)
  POST /events               {"user": u, "item": i, "weight": 1, "timestamp": t} or {"events": [...]}
  GET  /events/{user}                       the user's logged events
  GET  /metrics                             Prometheus text format
  GET  /docs, /redoc                        API docs from local assets (fastapi-offline), never a CDN

Errors answer 4xx with ``{"detail": ..., "field": ...}``: unknown ids and models 404, bad
arguments 422, a body over the limit 413, a missing API key 401. Ids in paths that look like
integers are integers for models with integer ids (and JSON ids are coerced the same way).
"""

# no `from __future__ import annotations`: FastAPI reads the route signatures at runtime

import asyncio
import hmac
import json
import logging
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any


from ..exceptions import MissingExtraError

log = logging.getLogger("tastebud")
STATIC = Path(__file__).resolve().parent / "static"


def _require() -> Any:
    try:
        import fastapi  # noqa: F401
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise MissingExtraError("fastapi", "serve", "the HTTP server") from e
    return fastapi


def warm_up(model: Any) -> None:
    """One small call of each capability, so that compiled kernels and caches are ready before a
    model takes traffic (a swap never makes a request pay for compilation)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for call in (
            lambda: model.recommend([model.users_.ids[0]], k=1) if hasattr(model, "users_") and len(model.users_) else None,
            lambda: model.recommend_for_history([model.items_.ids[0]], k=1) if hasattr(model, "recommend_for_history") else None,
            lambda: model.similar_items(model.items_.ids[0], k=1) if hasattr(model, "similar_items") else None,
        ):
            try:
                call()
            except Exception:  # noqa: BLE001 - a capability the model lacks is not a load failure
                pass


def _body_schema(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "properties": props, "required": required}}}}}


_ID = {"oneOf": [{"type": "integer"}, {"type": "string"}]}
_IDS = {"type": "array", "items": _ID}


def create_app(source: Any, *, default: str | None = None, items: str | None = None, dataset: str | None = None,
               catalog: Any = None, events: Any = "auto", limits: Any = None, api_key: str | None = None,
               cors_origins: Any = (), poll_s: float = 2.0, warmup: bool = True) -> Any:
    """The FastAPI app.

    ``source``: a fitted model, a saved model file, or a folder of models (``DIR/NAME.tb``,
    ``DIR/NAME/VERSION.tb``; polled every ``poll_s`` seconds for new versions). ``items`` (CSV/TSV/
    Parquet) or ``dataset`` (a registered dataset name) give item metadata. ``events``: path of the
    SQLite event log, ``"auto"`` (``DIR/events.db`` when serving a folder, off otherwise) or
    ``None``/``False`` (off). ``api_key`` protects the event endpoints. ``cors_origins``: origins
    allowed by CORS (none by default)."""
    fastapi = _require()
    from fastapi import Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.requests import ClientDisconnect
    from starlette.staticfiles import StaticFiles

    from .._version import __version__
    from .catalog import Catalog, load_catalog
    from .events import EventStore
    from .limits import BodyLimitMiddleware, Limits, RequestError, check_body, check_bool, check_id, check_k, check_list
    from .metrics import Metrics, MetricsMiddleware
    from .registry import ModelRegistry
    from .service import Cancelled, Service, jsonable

    limits = limits if isinstance(limits, Limits) else Limits.from_overrides(dict(limits or {}))
    metrics = Metrics()
    registry = ModelRegistry(source, default=default, poll_s=poll_s, warmup=warm_up if warmup else None,
                             on_swap=lambda e: metrics.inc("model_swaps_total"),
                             on_failure=lambda f: metrics.inc("model_load_failures_total"))
    if catalog is None:
        catalog = load_catalog(items, dataset) if (items or dataset) else Catalog()
    if events == "auto":
        events = (Path(source) / "events.db") if isinstance(source, (str, Path)) and Path(source).is_dir() else None
    store = EventStore(events) if events else None
    service = Service(registry, store, catalog, limits)

    @asynccontextmanager
    async def lifespan(app: Any):
        registry.start()
        try:
            yield
        finally:
            service.shutting_down.set()
            registry.stop()
            if store is not None:
                store.close()

    app = fastapi.FastAPI(title="tastebud", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                          description="Recommendations, explanations and live events over saved tastebud models.")
    _offline_docs(app)
    app.state.service, app.state.metrics, app.state.registry, app.state.events = service, metrics, registry, store

    # ------------------------------------------------------------------ errors
    @app.exception_handler(RequestError)
    async def _request_error(request: Request, exc: RequestError) -> Any:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Any:
        errs = exc.errors()
        first = errs[0] if errs else {}
        loc = [str(x) for x in first.get("loc", ()) if x not in ("query", "path", "body")]
        field = ".".join(loc) or None
        return JSONResponse({"detail": f"{field or 'request'}: {first.get('msg', 'invalid')}", "field": field},
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Any:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, exc: ClientDisconnect) -> Any:
        metrics.inc("requests_abandoned_total")  # hung up while sending the body: nothing to answer
        return JSONResponse({"detail": "client disconnected"}, status_code=400)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> Any:  # pragma: no cover - a bug, logged
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}"}, status_code=500)

    # ------------------------------------------------------------------ helpers
    async def body_of(request: Request, allowed: set[str], what: str) -> dict[str, Any]:
        raw = await request.body()
        try:
            data = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError) as e:
            raise RequestError(422, f"the body of {what} is not valid JSON: {e}", "body") from None
        return check_body(data, allowed, what)

    def respond(obj: Any) -> Any:
        return JSONResponse(obj)

    async def run(request: Request, fn: Any, *args: Any, **kw: Any) -> Any:
        """Run ``fn`` in a worker thread; abandon it when the client disconnects, the server shuts
        down or the request timeout passes (``fn`` checks the ``cancel`` event between chunks)."""
        cancel = threading.Event()
        fut = asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, cancel=cancel, **kw))
        t0 = time.monotonic()
        try:
            while True:
                done, _ = await asyncio.wait({fut}, timeout=0.05)
                if done:
                    return fut.result()
                if service.shutting_down.is_set() or await request.is_disconnected():
                    cancel.set()
                    fut.add_done_callback(_consume)
                    metrics.inc("requests_abandoned_total")
                    raise RequestError(503, "request abandoned (client gone or server stopping)")
                if time.monotonic() - t0 > limits.request_timeout_s:
                    cancel.set()
                    fut.add_done_callback(_consume)
                    metrics.inc("requests_abandoned_total")
                    raise RequestError(503, f"request took longer than {limits.request_timeout_s}s and was abandoned")
        except Cancelled:
            raise RequestError(503, "request abandoned") from None
        finally:
            if not fut.done():  # the task itself was cancelled (shutdown past the grace period)
                cancel.set()
                fut.add_done_callback(_consume)

    def check_key(request: Request) -> None:
        if api_key is None:
            return
        got = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if got is None and auth.lower().startswith("bearer "):
            got = auth[7:]
        if got is None or not hmac.compare_digest(got.encode(), api_key.encode()):
            raise RequestError(401, "a valid API key is required (header X-API-Key)", "X-API-Key")

    def path_id(v: str, field: str) -> Any:
        return check_id(v, limits, field)

    def top_of(v: Any) -> int:
        if v is None:
            return 5
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 50:
            raise RequestError(422, f"explain_top must be an integer in 1..50, got {v!r}", "explain_top")
        return v

    # ------------------------------------------------------------------ page
    @app.get("/", include_in_schema=False)
    def page() -> Any:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    # ------------------------------------------------------------------ info
    @app.get("/health")
    def health() -> Any:
        return respond({"status": "ok"})

    @app.get("/models")
    def models() -> Any:
        return respond(service.models())

    @app.get("/model")
    def info(model: str | None = None) -> Any:
        e = service.entry(model)
        m = e.model
        out = {"name": e.name, "version": e.version, "class": e.cls, "params": jsonable(_params_of(m))}
        for attr in ("users_", "items_"):
            v = getattr(m, attr, None)
            if v is not None:
                out[f"n_{attr[:-1]}"] = len(v)
        return respond(out)

    @app.get("/metrics", response_class=PlainTextResponse)
    def prometheus() -> Any:
        gauges = [("model_info", "Served model versions (value 1).",
                   {"model": e.name, "version": e.version, "class": e.cls}, 1.0) for e in registry.entries.values()]
        gauges += [("model_loaded_timestamp_seconds", "When each served version was loaded.",
                    {"model": e.name, "version": e.version}, e.loaded_at) for e in registry.entries.values()]
        gauges.append(("models_failed", "Model files that failed to load.", {}, float(len(registry.failed))))
        if store is not None:
            gauges.append(("events_logged", "Events in the event log.", {}, float(store.n_events)))
            gauges.append(("event_commits", "Transactions (fsyncs) the event log has committed since start.", {},
                           float(store.n_commits)))
        return PlainTextResponse(metrics.render(gauges), media_type="text/plain; version=0.0.4")

    # ------------------------------------------------------------------ recommend
    def q_int(qp: Any, name: str, default: int) -> int:
        v = qp.get(name)
        if v is None:
            return default
        try:
            return int(v)
        except ValueError:
            raise RequestError(422, f"{name} must be an integer, got {v[:40]!r}", name) from None

    def q_bool(qp: Any, name: str, default: bool) -> bool:
        v = qp.get(name)
        if v is None:
            return default
        lv = v.lower()
        if lv in ("true", "1", "yes", "on"):
            return True
        if lv in ("false", "0", "no", "off"):
            return False
        raise RequestError(422, f"{name} must be true or false, got {v[:40]!r}", name)

    # query parameters are read by hand on the hottest route: FastAPI's per-parameter validation cost
    # about a fifth of the server's CPU per request (profiled); the OpenAPI page still lists them
    @app.get("/recommend/{user}", openapi_extra={"parameters": [
        {"name": "k", "in": "query", "schema": {"type": "integer", "default": 10, "minimum": 1}},
        {"name": "filter_seen", "in": "query", "schema": {"type": "boolean", "default": True}},
        {"name": "model", "in": "query", "schema": {"type": "string"}},
        {"name": "explain", "in": "query", "schema": {"type": "boolean", "default": False}},
        {"name": "explain_top", "in": "query", "schema": {"type": "integer", "default": 5, "minimum": 1, "maximum": 50}}]})
    async def recommend_one(request: Request, user: str) -> Any:
        qp = request.query_params
        u = path_id(user, "user")
        k = check_k(q_int(qp, "k", 10), limits)
        filter_seen, explain = q_bool(qp, "filter_seen", True), q_bool(qp, "explain", False)
        model = qp.get("model")
        if explain:
            top = q_int(qp, "explain_top", 5)
            if not 1 <= top <= 50:
                raise RequestError(422, f"explain_top must be an integer in 1..50, got {top}", "explain_top")
            r = await run(request, service.recommend_user, model, u, k, filter_seen, None, True, top)
        else:
            r = service.recommend_user(model, u, k, filter_seen)
        return respond(r)

    @app.post("/recommend", openapi_extra=_body_schema({
        "users": _IDS, "k": {"type": "integer", "default": 10}, "filter_seen": {"type": "boolean", "default": True},
        "items": _IDS, "model": {"type": "string"}, "explain": {"type": "boolean", "default": False}}, ["users"]))
    async def recommend(request: Request) -> Any:
        b = await body_of(request, {"users", "k", "filter_seen", "items", "model", "explain", "explain_top"}, "/recommend")
        if "users" not in b:
            raise RequestError(422, "users is required", "users")
        users = [check_id(u, limits, f"users[{j}]") for j, u in enumerate(check_list(b["users"], limits.max_users, "users"))]
        k = check_k(b.get("k", 10), limits)
        cand = b.get("items")
        if cand is not None:
            cand = [check_id(i, limits, f"items[{j}]") for j, i in enumerate(check_list(cand, limits.max_pairs, "items", False))]
        ex = check_bool(b.get("explain"), "explain", False)
        res = await run(request, service.recommend_users, _model_of(b), users, k,
                        check_bool(b.get("filter_seen"), "filter_seen", True), cand, ex, top_of(b.get("explain_top")))
        rs = res["results"]
        out: dict[str, Any] = {"model": res["model"], "version": res["version"], "users": [r["user"] for r in rs],
                               "items": [r["items"] for r in rs], "scores": [r["scores"] for r in rs]}
        if ex:
            out["explanations"] = [r["explanations"] for r in rs]
        if rs and "metadata" in rs[0]:
            out["metadata"] = [r["metadata"] for r in rs]
        titles = {k: v for r in rs for k, v in r.get("titles", {}).items()}
        if titles:
            out["titles"] = titles
        return respond(out)

    @app.post("/recommend_for_history", openapi_extra=_body_schema({
        "items": _IDS, "k": {"type": "integer", "default": 10}, "weights": {"type": "array", "items": {"type": "number"}},
        "filter_seen": {"type": "boolean", "default": True}, "model": {"type": "string"},
        "explain": {"type": "boolean", "default": False}}, ["items"]))
    async def recommend_for_history(request: Request) -> Any:
        b = await body_of(request, {"items", "k", "weights", "filter_seen", "model", "explain", "explain_top"},
                          "/recommend_for_history")
        if "items" not in b:
            raise RequestError(422, "items is required", "items")
        items = [check_id(i, limits, f"items[{j}]") for j, i in enumerate(check_list(b["items"], limits.max_history, "items"))]
        w = b.get("weights")
        if w is not None:
            w = check_list(w, limits.max_history, "weights")
            if len(w) != len(items):
                raise RequestError(422, f"weights must have one value per item ({len(items)}), got {len(w)}", "weights")
            from .limits import check_number

            w = [check_number(x, f"weights[{j}]") for j, x in enumerate(w)]
            if any(x < 0 for x in w):
                raise RequestError(422, "weights must be >= 0", "weights")
        res = await run(request, _no_cancel(service.recommend_history), _model_of(b), items, check_k(b.get("k", 10), limits),
                        w, check_bool(b.get("filter_seen"), "filter_seen", True),
                        check_bool(b.get("explain"), "explain", False), top_of(b.get("explain_top")))
        return respond(res)

    @app.post("/rules", openapi_extra=_body_schema({
        "basket": _IDS, "k": {"type": "integer", "default": 10}, "model": {"type": "string"},
        "explain": {"type": "boolean", "default": False}}, ["basket"]))
    async def rules(request: Request) -> Any:
        b = await body_of(request, {"basket", "k", "model", "explain", "explain_top"}, "/rules")
        if "basket" not in b:
            raise RequestError(422, "basket is required", "basket")
        basket = [check_id(i, limits, f"basket[{j}]") for j, i in enumerate(check_list(b["basket"], limits.max_history, "basket"))]
        res = await run(request, _no_cancel(service.rules), _model_of(b), basket, check_k(b.get("k", 10), limits),
                        check_bool(b.get("explain"), "explain", False), top_of(b.get("explain_top")))
        return respond(res)

    @app.get("/similar/{item}")
    def similar(item: str, k: int = 10, model: str | None = None) -> Any:
        check_k(k, limits)
        return respond(service.similar(model, path_id(item, "item"), k))

    @app.post("/predict", openapi_extra=_body_schema({"users": _IDS, "items": _IDS, "model": {"type": "string"}},
                                                     ["users", "items"]))
    async def predict(request: Request) -> Any:
        b = await body_of(request, {"users", "items", "model"}, "/predict")
        for f in ("users", "items"):
            if f not in b:
                raise RequestError(422, f"{f} is required", f)
        users = [check_id(u, limits, f"users[{j}]") for j, u in enumerate(check_list(b["users"], limits.max_pairs, "users"))]
        items = [check_id(i, limits, f"items[{j}]") for j, i in enumerate(check_list(b["items"], limits.max_pairs, "items"))]
        return respond(await run(request, _no_cancel(service.predict), _model_of(b), users, items))

    @app.get("/items/search")
    def search(q: str = "", limit: int = 20, model: str | None = None) -> Any:
        if len(q) > limits.max_query_chars:
            raise RequestError(422, f"q has {len(q)} characters; the limit is {limits.max_query_chars}", "q")
        if not 1 <= limit <= limits.max_search_results:
            raise RequestError(422, f"limit must be between 1 and {limits.max_search_results}", "limit")
        return respond(service.search(model, q, limit))

    # ------------------------------------------------------------------ events
    @app.post("/events", openapi_extra=_body_schema({
        "user": _ID, "item": _ID, "weight": {"type": "number", "default": 1.0}, "timestamp": {"type": "number"},
        "events": {"type": "array", "items": {"type": "object"}}}, []))
    async def post_events(request: Request) -> Any:
        check_key(request)
        if store is None:
            raise RequestError(404, "the event log is off; start the server on a folder or with --events PATH", "events")
        b = await body_of(request, {"user", "item", "weight", "timestamp", "events"}, "/events")
        if "events" in b:
            if set(b) != {"events"}:
                raise RequestError(422, "give either one event (user, item, ...) or {\"events\": [...]}", "events")
            raw = check_list(b["events"], limits.max_events, "events", allow_empty=False)
        else:
            raw = [b]
        evs = service.make_events(raw)
        try:
            ids = await asyncio.wait_for(asyncio.wrap_future(store.submit(evs)), timeout=limits.request_timeout_s)
        except asyncio.TimeoutError:
            raise RequestError(503, "the event log did not commit in time; the events may not be stored") from None
        except RuntimeError as e:
            raise RequestError(503, f"the event log is not accepting events: {e}") from None
        metrics.inc("events_stored_total", len(ids))
        return respond({"stored": len(ids), "ids": ids})

    @app.get("/events/{user}")
    def get_events(request: Request, user: str) -> Any:
        check_key(request)
        if store is None:
            raise RequestError(404, "the event log is off", "events")
        u = path_id(user, "user")
        return respond({"user": u, "events": [{"item": i, "weight": w, "timestamp": t} for i, w, t in store.history(u)]})

    # ------------------------------------------------------------------ middleware (outermost last)
    if cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["content-type", "x-api-key", "authorization"])
    app.add_middleware(BodyLimitMiddleware, max_bytes=limits.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
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


def _consume(fut: Any) -> None:
    """Retrieve the result of abandoned work so that its ``Cancelled`` is not reported as lost."""
    if not fut.cancelled():
        fut.exception()


def _model_of(b: dict[str, Any]) -> Any:
    from .limits import RequestError

    m = b.get("model")
    if m is not None and not isinstance(m, str):
        raise RequestError(422, "model must be a string (a served model's name)", "model")
    return m


def _no_cancel(fn: Any) -> Any:
    """Bounded work that has no chunk boundary to check: the ``cancel`` event is dropped."""
    def call(*a: Any, cancel: Any = None, **kw: Any) -> Any:
        return fn(*a, **kw)
    return call


def _params_of(m: Any) -> dict[str, Any]:
    try:
        return m.get_params()
    except Exception:  # noqa: BLE001
        return {}


def limit_threads(threads: int) -> None:
    """Kernel threads of this process (numba, BLAS, OpenMP, torch). Call before numba is imported:
    numba reads ``NUMBA_NUM_THREADS`` once, at import."""
    import os
    import sys

    n = str(max(1, int(threads)))
    for var in ("NUMBA_NUM_THREADS", "TASTEBUD_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        if var != "NUMBA_NUM_THREADS" or "numba" not in sys.modules:
            os.environ[var] = n
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(n))


def serve(source: str, host: str = "127.0.0.1", port: int = 8000, graceful_s: int = 3,
          log_level: str = "info", threads: int = 1, **options: Any) -> None:  # pragma: no cover - real processes
    """Run the service with uvicorn until SIGINT/SIGTERM. In-flight requests get ``graceful_s``
    seconds to finish; worker threads are told to stop; the event log commits what it holds.

    ``threads``: threads of the numeric kernels inside one request (numba, BLAS, torch). The
    service's parallelism is across requests, so the default is 1: a parallel kernel for one
    user's top-10 costs more in wake-ups than it saves, and under load a region waiting for a
    descheduled thread stalls the request (measured: 5x the CPU per request with 2 threads)."""
    limit_threads(threads)
    _require()
    try:
        import uvicorn
    except ImportError as e:
        raise MissingExtraError("uvicorn", "serve", "the HTTP server") from e
    app = create_app(source, **options)
    service = app.state.service

    class _Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            # tell running work to stop now, so in-flight requests end (503) well inside the grace period
            service.shutting_down.set()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(app, host=host, port=port, timeout_graceful_shutdown=graceful_s, access_log=False,
                            log_level=log_level, server_header=False)
    _Server(config).run()


__all__ = ["create_app", "serve", "warm_up"]
