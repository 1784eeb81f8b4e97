"""What the HTTP routes do, without HTTP: model lookup, id coercion, histories (training history +
logged events), recommendations, explanations, metadata. Routes in ``app.py`` only parse and
answer; every method here raises :class:`~tastebud.serving.limits.RequestError` for a bad request.
"""

from __future__ import annotations

import inspect
import re
import threading
from typing import Any

import numpy as np

from ..exceptions import UnknownIdError
from .catalog import Catalog, json_value
from .events import Event, EventStore
from .explain import explain as explain_items
from .limits import INT64_MAX, INT64_MIN, Limits, RequestError
from .registry import Entry, ModelRegistry

_INT = re.compile(r"^[+-]?\d{1,19}$")


class Cancelled(Exception):
    """The client went away or the server is shutting down: the work was abandoned."""


def _params(fn: Any) -> set[str]:
    try:
        return set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return set()


def jsonable(a: Any) -> Any:
    """Arrays, numpy scalars and lists as plain JSON values (NaN and infinities as null)."""
    return json_value(a)


def capabilities(model: Any) -> list[str]:
    caps = []
    if hasattr(model, "users_") and hasattr(model, "recommend") and not hasattr(model, "fp_"):
        caps.append("recommend")
    if hasattr(model, "recommend_for_history"):
        caps.append("history")
    if hasattr(model, "similar_items") and not hasattr(model, "fp_"):
        try:
            if model.item_vectors() is not None or type(model)._similar_scores is not _base_similar():
                caps.append("similar")
        except Exception:  # noqa: BLE001
            pass
    if hasattr(model, "predict") and hasattr(model, "_predict_indices"):
        caps.append("predict")
    if hasattr(model, "fp_"):
        caps.append("rules")
    if any(hasattr(model, a) for a in ("explain", "explain_history", "explain_pair", "item_vectors")):
        caps.append("explain")
    return caps


def _base_similar() -> Any:
    from ..models.base import Recommender

    return Recommender._similar_scores


class Service:
    def __init__(self, registry: ModelRegistry, events: EventStore | None, catalog: Catalog, limits: Limits):
        self.registry, self.events, self.catalog, self.limits = registry, events, catalog, limits
        self.shutting_down = threading.Event()
        self._id_text: dict[int, tuple[Any, list[str], Any]] = {}

    # ------------------------------------------------------------------ models and ids
    def entry(self, name: str | None) -> Entry:
        e = self.registry.get(name)
        if e is None:
            if name is None:
                raise RequestError(503, "no model is being served (see GET /models for failures)", "model")
            raise RequestError(404, f"unknown model {name!r}; served models: {sorted(self.registry.entries)}", "model")
        return e

    @staticmethod
    def coerce(model: Any, kind: str, v: Any) -> Any:
        """An id as the model stores it: "42" for a model with integer ids is 42; 42 for a model
        with string ids is "42". Anything that cannot be such an id is returned unchanged (and is
        then unknown to the model)."""
        m = getattr(model, "users_" if kind == "user" else "items_", None)
        dk = getattr(getattr(m, "ids", None), "dtype", None)
        if dk is None:
            return v
        if dk.kind in "iu" and isinstance(v, str) and _INT.match(v.strip()):
            n = int(v.strip())
            return n if INT64_MIN <= n <= INT64_MAX else v
        if dk.kind in "UOS" and isinstance(v, int) and not isinstance(v, bool):
            return str(v)
        return v

    def coerce_all(self, model: Any, kind: str, vs: list[Any]) -> list[Any]:
        return [self.coerce(model, kind, v) for v in vs]

    def known_items(self, model: Any, items: list[Any], weights: list[float] | None) -> tuple[list[Any], list[float] | None]:
        if not items:
            return [], ([] if weights is not None else None)
        items = self.coerce_all(model, "item", items)
        ok = model.items_.index(items, missing="mask") >= 0
        kept = [i for i, k in zip(items, ok) if k]
        return kept, ([w for w, k in zip(weights, ok) if k] if weights is not None else None)

    # ------------------------------------------------------------------ histories
    def training_history(self, model: Any, user: Any) -> list[Any]:
        """The items the model read for a known ``user`` (ordered for sequence models)."""
        u = int(model.users_.index([user])[0])
        if hasattr(model, "hist_indptr_") and hasattr(model, "hist_indices_"):
            p = model.hist_indptr_
            return model.items_.ids[model.hist_indices_[p[u]:p[u + 1]]].tolist()
        s = model.seen_
        return model.items_.ids[s.indices[s.indptr[u]:s.indptr[u + 1]]].tolist()

    def logged(self, user: Any) -> list[tuple[Any, float, float]]:
        return self.events.history(user) if self.events is not None else []

    def history_of(self, model: Any, user: Any, known: bool) -> tuple[list[Any], list[float], int]:
        """(items, weights, number of logged events) for ``user``: training history, then events."""
        items: list[Any] = self.training_history(model, user) if known else []
        weights = [1.0] * len(items)
        ev = self.logged(user)
        for it, w, _ in ev:
            items.append(it)
            weights.append(w)
        items, weights = self.known_items(model, items, weights)
        return items, weights or [], len(ev)

    # ------------------------------------------------------------------ recommending
    def _call(self, fn: Any, *a: Any, **kw: Any) -> Any:
        try:
            return fn(*a, **kw)
        except UnknownIdError as e:
            raise RequestError(404, str(e), e.kind) from None
        except (ValueError, TypeError, NotImplementedError) as e:
            msg = str(e)
            field = "k" if re.search(r"\bk\b|k=", msg) else None
            raise RequestError(422, msg, field) from None

    def _from_history(self, model: Any, items: list[Any], weights: list[float] | None, k: int,
                      filter_seen: bool) -> tuple[list[Any], list[Any]]:
        fn = model.recommend_for_history
        p = _params(fn)
        kw: dict[str, Any] = {"k": k}
        if "filter_seen" in p:
            kw["filter_seen"] = filter_seen
        if weights is not None and "weights" in p:
            kw["weights"] = weights
        ids, sc = self._call(fn, items, **kw)
        return jsonable(ids), jsonable(sc)

    def recommend_user(self, name: str | None, user: Any, k: int, filter_seen: bool = True,
                       candidates: list[Any] | None = None, explain: bool = False, top: int = 5,
                       cancel: threading.Event | None = None) -> dict[str, Any]:
        res = self.recommend_users(name, [user], k, filter_seen, candidates, explain, top, cancel)
        return {**res["results"][0], "model": res["model"], "version": res["version"]}

    def recommend_users(self, name: str | None, users: list[Any], k: int, filter_seen: bool = True,
                        candidates: list[Any] | None = None, explain: bool = False, top: int = 5,
                        cancel: threading.Event | None = None) -> dict[str, Any]:
        e = self.entry(name)
        m = e.model
        if "recommend" not in capabilities(m):
            raise RequestError(422, f"model {e.name!r} ({e.cls}) does not recommend for users; "
                                    "use /recommend_for_history or /rules", "model")
        users = self.coerce_all(m, "user", users)
        has_ev = [self.events is not None and self.events.has_user(u) for u in users]
        cand = self.coerce_all(m, "item", candidates) if candidates is not None else None
        if not explain and not any(has_ev):  # the common case: straight to the model, in chunks
            results: list[dict[str, Any] | None] = []
            for s in range(0, len(users), 64):
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                part = users[s:s + 64]
                ids, sc = self._call(m.recommend, part, k=k, filter_seen=filter_seen, items=cand)
                results += [{"user": u, "items": jsonable(ids[r]), "scores": jsonable(sc[r]), "source": "model"}
                            for r, u in enumerate(part)]
            self.decorate(results)
            return {"model": e.name, "version": e.version, "results": results}
        uidx = m.users_.index(users, missing="mask")
        unknown = [u for u, i, h in zip(users, uidx, has_ev) if i < 0 and not h]
        if unknown:
            raise RequestError(404, str(UnknownIdError("user", unknown)), "user")
        can_hist = hasattr(m, "recommend_for_history")
        results = [None] * len(users)
        plain = [j for j in range(len(users)) if uidx[j] >= 0 and not has_ev[j] and not (explain and can_hist)]
        if plain:
            for s in range(0, len(plain), 64):
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                part = plain[s:s + 64]
                ids, sc = self._call(m.recommend, [users[j] for j in part], k=k, filter_seen=filter_seen, items=cand)
                for r, j in enumerate(part):
                    results[j] = {"user": users[j], "items": jsonable(ids[r]), "scores": jsonable(sc[r]), "source": "model"}
        for j in range(len(users)):
            if results[j] is not None:
                continue
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            u, known = users[j], bool(uidx[j] >= 0)
            items, weights, n_ev = self.history_of(m, u, known)
            if can_hist and cand is None:
                ids, sc = self._from_history(m, items, weights, k, filter_seen)
                results[j] = {"user": u, "items": ids, "scores": sc, "source": "history"}
            elif known:  # no fold-in: rank with the model and leave out the logged items
                drop = {str(i) for i, *_ in self.logged(u)} if filter_seen else set()
                kk = min(k + len(drop), len(m.items_))
                ids, sc = self._call(m.recommend, [u], k=kk, filter_seen=filter_seen, items=cand)
                pairs = [(i, s) for i, s in zip(jsonable(ids[0]), jsonable(sc[0])) if str(i) not in drop][:k]
                results[j] = {"user": u, "items": [p[0] for p in pairs], "scores": [p[1] for p in pairs],
                              "source": "model" if not drop else "model, logged items removed"}
            else:
                raise RequestError(422, f"model {e.name!r} ({e.cls}) cannot recommend for a user it has not "
                                        f"seen ({u!r}) from logged events alone", "user")
            results[j]["events"] = n_ev
        if explain:
            for j, r in enumerate(results):
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                items, weights, _ = self.history_of(m, r["user"], bool(uidx[j] >= 0))
                r["explanations"] = self._explain(m, r["items"], items, weights, r["user"] if uidx[j] >= 0 else None, top)
        self.decorate(results)
        return {"model": e.name, "version": e.version, "results": results}

    def recommend_history(self, name: str | None, items: list[Any], k: int, weights: list[float] | None = None,
                          filter_seen: bool = True, explain: bool = False, top: int = 5) -> dict[str, Any]:
        e = self.entry(name)
        m = e.model
        if not hasattr(m, "recommend_for_history"):
            raise RequestError(422, f"model {e.name!r} ({e.cls}) cannot recommend for a new history", "model")
        kept, kw = self.known_items(m, items, weights)
        ids, sc = self._from_history(m, kept, kw, k, filter_seen)
        out: dict[str, Any] = {"model": e.name, "version": e.version, "items": ids, "scores": sc,
                               "unknown_items": len(items) - len(kept)}
        if explain:
            out["explanations"] = self._explain(m, ids, kept, kw, None, top)
        self.decorate([out])
        return out

    def rules(self, name: str | None, basket: list[Any], k: int, explain: bool, top: int = 5) -> dict[str, Any]:
        e = self._rules_entry(name)
        m = e.model
        kept, _ = self.known_items(m, basket, None)
        ids, sc = self._call(m.recommend, [kept], k=k)
        out: dict[str, Any] = {"model": e.name, "version": e.version, "items": jsonable(ids[0]),
                               "scores": jsonable(sc[0]), "unknown_items": len(basket) - len(kept)}
        if explain:
            out["explanations"] = self._explain(m, out["items"], kept, None, None, top)
        self.decorate([out])
        return out

    def _rules_entry(self, name: str | None) -> Entry:
        if name is None:
            d = self.registry.get(None)
            if d is not None and hasattr(d.model, "fp_"):
                return d
            for n in sorted(self.registry.entries):
                if hasattr(self.registry.entries[n].model, "fp_"):
                    return self.registry.entries[n]
            raise RequestError(404, "no association-rule model (RuleRecommender) is being served", "model")
        e = self.entry(name)
        if not hasattr(e.model, "fp_"):
            raise RequestError(422, f"model {e.name!r} ({e.cls}) is not a RuleRecommender", "model")
        return e

    def _explain(self, m: Any, ids: list[Any], history: list[Any], weights: list[float] | None, user: Any,
                 top: int) -> list[Any]:
        try:
            return jsonable(explain_items(m, ids, history, weights, user=user, top=top))
        except (ValueError, TypeError, KeyError, NotImplementedError) as ex:
            return [{"kind": "none", "reason": f"{type(ex).__name__}: {ex}"} for _ in ids]

    def similar(self, name: str | None, item: Any, k: int) -> dict[str, Any]:
        e = self.entry(name)
        m = e.model
        if "similar" not in capabilities(m):
            raise RequestError(422, f"model {e.name!r} ({e.cls}) has no item similarity", "model")
        item = self.coerce(m, "item", item)
        ids, sc = self._call(m.similar_items, item, k=k)
        out = {"model": e.name, "version": e.version, "item": item, "items": jsonable(ids), "scores": jsonable(sc)}
        self.decorate([out])
        return out

    def predict(self, name: str | None, users: list[Any], items: list[Any]) -> dict[str, Any]:
        e = self.entry(name)
        m = e.model
        if "predict" not in capabilities(m):
            raise RequestError(422, f"model {e.name!r} ({e.cls}) does not predict ratings", "model")
        if len(users) != len(items):
            raise RequestError(422, f"users and items must have the same length, got {len(users)} and {len(items)}",
                               "items")
        pred = self._call(m.predict, self.coerce_all(m, "user", users), self.coerce_all(m, "item", items))
        return {"model": e.name, "version": e.version, "predictions": jsonable(np.asarray(pred, dtype=float))}

    # ------------------------------------------------------------------ metadata
    def decorate(self, results: list[dict[str, Any]]) -> None:
        """Metadata beside the ids, and ``titles`` of the other items an explanation names."""
        if not len(self.catalog):
            return
        for r in results:
            r["metadata"] = self.catalog.describe(r["items"])
            named: set[str] = set()
            for ex in r.get("explanations") or ():
                if not ex:
                    continue
                for c in ex.get("top", ()):
                    named.add(str(c["item"]))
                rule = ex.get("rule")
                if rule:
                    named.update(str(a) for a in rule["antecedent"])
            if named:
                r["titles"] = {i: t for i in sorted(named) if (t := self.catalog.title(i)) is not None}

    def search(self, name: str | None, q: str, limit: int) -> dict[str, Any]:
        e = self.entry(name) if (name is not None or self.registry.entries) else None
        m = e.model if e is not None else None
        ids_text = self._item_texts(e) if e is not None else None
        if len(self.catalog):
            hits = self.catalog.search(q, limit, restrict=ids_text[2] if ids_text else None)
            for h in hits:
                if m is not None:
                    h["item"] = self.coerce(m, "item", h["item"])
            return {"query": q, "results": hits}
        if ids_text is None:
            return {"query": q, "results": []}
        ql = q.strip().lower()
        out = []
        for iid, t in zip(ids_text[0], ids_text[1]):
            if ql in t:
                out.append({"item": iid})
                if len(out) >= limit:
                    break
        return {"query": q, "results": out}

    def _item_texts(self, e: Entry) -> tuple[Any, list[str], set[str]] | None:
        m = e.model
        if not hasattr(m, "items_"):
            return None
        key = id(m)
        got = self._id_text.get(key)
        if got is None or got[0] is not m:
            ids = m.items_.ids.tolist()
            texts = [str(i).lower() for i in ids]
            got = (m, (ids, texts, set(str(i) for i in ids)), None)
            self._id_text = {key: got}  # one model at a time: the cache never grows
        return got[1]

    # ------------------------------------------------------------------ events
    def make_events(self, raw: list[Any]) -> list[Event]:
        from .limits import check_id, check_number

        out = []
        for j, ev in enumerate(raw):
            where = f"events[{j}]"
            if not isinstance(ev, dict):
                raise RequestError(422, f"{where} must be an object with user and item", where)
            extra = sorted(set(ev) - {"user", "item", "weight", "timestamp"})
            if extra:
                raise RequestError(422, f"{where}: unknown field(s) {extra}", f"{where}.{extra[0]}")
            for f in ("user", "item"):
                if f not in ev:
                    raise RequestError(422, f"{where}: missing {f}", f"{where}.{f}")
            u = check_id(ev["user"], self.limits, f"{where}.user")
            i = check_id(ev["item"], self.limits, f"{where}.item")
            w = check_number(ev.get("weight"), f"{where}.weight", 1.0)
            if w is not None and w < 0:
                raise RequestError(422, f"{where}.weight must be >= 0, got {w}", f"{where}.weight")
            ts = check_number(ev.get("timestamp"), f"{where}.timestamp", None)
            out.append(Event(u, i, float(w if w is not None else 1.0), ts))
        return out

    def models(self) -> dict[str, Any]:
        out = []
        for name, e in sorted(self.registry.entries.items()):
            m = e.model
            d: dict[str, Any] = {"name": name, "version": e.version, "class": e.cls, "path": e.path,
                                 "loaded_at": e.loaded_at, "capabilities": capabilities(m)}
            for attr in ("users_", "items_"):
                v = getattr(m, attr, None)
                if v is not None:
                    d[f"n_{attr[:-1]}"] = len(v)
            out.append(d)
        failed = [{"name": f.name, "version": f.version, "path": f.path, "error": f.error, "at": f.at}
                  for f in sorted(self.registry.failed.values(), key=lambda f: f.name)]
        return {"default": self.registry.default, "models": out, "failed": failed}
