"""Request counting, latency histograms, access logs and ``/metrics`` in the Prometheus text
exposition format (version 0.0.4), without a client library.

Labels are bounded: the route template (``/recommend/{user}``, never the raw path), the method
and the status code, so a scan of random URLs cannot grow the series without end.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

log = logging.getLogger("tastebud.serving.access")

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


def _esc(v: Any) -> str:
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = {}
        self.hist: dict[str, list[float]] = {}  # route -> bucket counts + [sum, count]
        self.counters: dict[str, float] = {"events_stored_total": 0.0, "model_swaps_total": 0.0,
                                           "model_load_failures_total": 0.0, "requests_abandoned_total": 0.0}
        self.started = time.time()

    def inc(self, name: str, by: float = 1.0) -> None:
        with self._lock:
            self.counters[name] = self.counters.get(name, 0.0) + by

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            key = (method, route, status)
            self.requests[key] = self.requests.get(key, 0) + 1
            h = self.hist.get(route)
            if h is None:
                h = self.hist[route] = [0.0] * (len(BUCKETS) + 2)
            for j, b in enumerate(BUCKETS):
                if seconds <= b:
                    h[j] += 1
            h[-2] += seconds
            h[-1] += 1

    def render(self, gauges: list[tuple[str, str, dict[str, Any], float]]) -> str:
        """The exposition text; ``gauges`` are (name, help, labels, value) of the moment."""
        out = ["# HELP tastebud_requests_total HTTP requests by method, route and status.",
               "# TYPE tastebud_requests_total counter"]
        with self._lock:
            for (m, r, s), n in sorted(self.requests.items()):
                out.append(f'tastebud_requests_total{{method="{m}",route="{_esc(r)}",status="{s}"}} {n}')
            out += ["# HELP tastebud_request_seconds Request latency by route.",
                    "# TYPE tastebud_request_seconds histogram"]
            for r, h in sorted(self.hist.items()):
                for j, b in enumerate(BUCKETS):
                    out.append(f'tastebud_request_seconds_bucket{{route="{_esc(r)}",le="{b}"}} {int(h[j])}')
                out.append(f'tastebud_request_seconds_bucket{{route="{_esc(r)}",le="+Inf"}} {int(h[-1])}')
                out.append(f'tastebud_request_seconds_sum{{route="{_esc(r)}"}} {h[-2]:.6f}')
                out.append(f'tastebud_request_seconds_count{{route="{_esc(r)}"}} {int(h[-1])}')
            for name, v in sorted(self.counters.items()):
                out += [f"# TYPE tastebud_{name} counter", f"tastebud_{name} {v:g}"]
        seen: set[str] = set()
        for name, help_, labels, v in gauges:
            if name not in seen:
                out += [f"# HELP tastebud_{name} {help_}", f"# TYPE tastebud_{name} gauge"]
                seen.add(name)
            lab = ",".join(f'{k}="{_esc(x)}"' for k, x in labels.items())
            out.append(f"tastebud_{name}{{{lab}}} {v:g}" if lab else f"tastebud_{name} {v:g}")
        out.append(f"tastebud_uptime_seconds {time.time() - self.started:.3f}")
        return "\n".join(out) + "\n"


class MetricsMiddleware:
    """Pure ASGI middleware (cheaper than Starlette's BaseHTTPMiddleware): times every request,
    counts it under its route template and writes one access-log line."""

    def __init__(self, app: Any, metrics: Metrics, model_of: Callable[[dict], str] | None = None):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = 500

        async def send_wrapper(msg: dict) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = int(msg["status"])
            await send(msg)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            dt = time.perf_counter() - t0
            route = getattr(scope.get("route"), "path", None) or ("/static" if scope["path"].startswith("/static/")
                                                                  else "(unmatched)")
            self.metrics.observe(scope["method"], route, status, dt)
            if log.isEnabledFor(logging.INFO):
                client = scope.get("client") or ("-", 0)
                q = scope.get("query_string", b"").decode("latin-1")
                log.info('%s "%s %s%s" %d %.1fms', client[0], scope["method"], scope["path"], f"?{q}" if q else "",
                         status, dt * 1000)
