"""Input limits of the service and the 4xx errors that name the field at fault.

Every request is bounded before any work starts: the body size (checked on ``Content-Length`` and
again while the body streams in, so a chunked upload cannot slip past), ``k``, the users of one
request, the length of a history or basket, the pairs of one ``/predict``, the events of one
``/events`` call, and the size of one id. A request over a limit answers 413 (body) or 422 with
``{"detail": ..., "field": ...}``; nothing reaches a model with unbounded work.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from typing import Any

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Limits:
    """Per-request limits (``tastebud serve --limit name=value`` overrides any of them)."""

    max_body_bytes: int = 1_000_000
    max_k: int = 1000
    max_users: int = 1000
    max_history: int = 1000
    max_pairs: int = 10_000
    max_events: int = 10_000
    max_id_chars: int = 256
    max_query_chars: int = 200
    max_search_results: int = 100
    request_timeout_s: float = 30.0

    @classmethod
    def from_overrides(cls, items: dict[str, Any]) -> "Limits":
        names = {f.name: f.type for f in fields(cls)}
        kw = {}
        for k, v in items.items():
            if k not in names:
                raise ValueError(f"unknown limit {k!r}; limits are {sorted(names)}")
            kw[k] = float(v) if k == "request_timeout_s" else int(v)
            if kw[k] <= 0:
                raise ValueError(f"limit {k} must be > 0, got {v!r}")
        return cls(**kw)


class RequestError(Exception):
    """A bad request: answered with ``status`` and ``{"detail": message, "field": field}``."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"detail": self.message}
        if self.field is not None:
            out["field"] = self.field
        return out


def check_k(k: Any, limits: Limits, field: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, int):
        raise RequestError(422, f"{field} must be an integer, got {k!r}", field)
    if k < 1 or k > limits.max_k:
        raise RequestError(422, f"{field} must be between 1 and {limits.max_k}, got {k}", field)
    return k


def check_list(v: Any, limit: int, field: str, allow_empty: bool = True) -> list:
    if not isinstance(v, list):
        raise RequestError(422, f"{field} must be a list, got {type(v).__name__}", field)
    if len(v) > limit:
        raise RequestError(422, f"{field} has {len(v)} entries; the limit is {limit}", field)
    if not allow_empty and not v:
        raise RequestError(422, f"{field} must not be empty", field)
    return v


def check_id(v: Any, limits: Limits, field: str) -> int | str:
    """An external id from JSON or a path: an int64 or a non-empty string of bounded length."""
    if isinstance(v, bool) or v is None or not isinstance(v, (int, str)):
        raise RequestError(422, f"{field}: an id must be an integer or a string, got {json.dumps(v)[:50]}", field)
    if isinstance(v, int) and not INT64_MIN <= v <= INT64_MAX:
        raise RequestError(422, f"{field}: id {v} is outside the 64-bit integer range", field)
    if isinstance(v, str) and not (0 < len(v) <= limits.max_id_chars):
        raise RequestError(422, f"{field}: an id string must have 1 to {limits.max_id_chars} characters", field)
    return v


def check_number(v: Any, field: str, default: float | None = None) -> float | None:
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        raise RequestError(422, f"{field} must be a finite number, got {json.dumps(v)[:50]}", field)
    return float(v)


def check_bool(v: Any, field: str, default: bool) -> bool:
    if v is None:
        return default
    if not isinstance(v, bool):
        raise RequestError(422, f"{field} must be true or false, got {json.dumps(v)[:50]}", field)
    return v


def check_body(body: Any, allowed: set[str], what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise RequestError(422, f"the body of {what} must be a JSON object", "body")
    extra = sorted(set(body) - allowed)
    if extra:
        raise RequestError(422, f"unknown field(s) {extra} for {what}; allowed: {sorted(allowed)}", extra[0])
    return body


class BodyLimitMiddleware:
    """Pure ASGI middleware: 413 for a body over ``max_bytes``, by header or while streaming."""

    def __init__(self, app: Any, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for k, v in scope.get("headers", ()):
            if k == b"content-length":
                try:
                    n = int(v)
                except ValueError:
                    n = -1
                if n < 0 or n > self.max_bytes:
                    return await _send_json(send, 413, {"detail": f"request body of {v.decode(errors='replace')} bytes "
                                                                  f"exceeds the limit of {self.max_bytes}", "field": "body"})
        seen = 0
        too_big = False

        async def counted() -> dict:
            nonlocal seen, too_big
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    too_big = True
                    raise _BodyTooLarge()
            return msg

        started = False

        async def guarded_send(msg: dict) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, counted, guarded_send)
        except _BodyTooLarge:
            if not started:
                await _send_json(send, 413, {"detail": f"request body exceeds the limit of {self.max_bytes} bytes",
                                             "field": "body"})
        except Exception:
            if too_big and not started:
                await _send_json(send, 413, {"detail": f"request body exceeds the limit of {self.max_bytes} bytes",
                                             "field": "body"})
            else:
                raise


class _BodyTooLarge(Exception):
    pass


async def _send_json(send: Any, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
