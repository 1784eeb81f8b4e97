"""The served models: one saved file, or a folder of models and versions, hot-swapped on change.

Layout of a served folder::

    DIR/NAME.tb              model NAME (version "0")
    DIR/NAME/VERSION.tb      versions of NAME; the highest VERSION is served (numeric when every
                             version of NAME is an integer, else by string order)

A poller thread looks at the folder every ``poll_s`` seconds (file names, sizes and mtimes; no
extra dependency). When the highest version of a model changes, it is loaded and warmed up off
the request path, then swapped in with one reference assignment: a request holds the
:class:`Entry` it started with, so in-flight requests finish on the old model and new ones get
the new model — no request is dropped or fails. A file that does not load (truncated copy,
hostile or foreign file) is logged and listed under ``failed`` in ``GET /models``; the previous
version keeps serving and the file is tried again when its size or mtime changes.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger("tastebud")

SUFFIX = ".tb"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


@dataclass
class Entry:
    """One loaded model version."""

    name: str
    version: str
    path: str
    model: Any
    signature: tuple[int, int]
    loaded_at: float = field(default_factory=time.time)

    @property
    def cls(self) -> str:
        return type(self.model).__name__


@dataclass
class Failure:
    name: str
    version: str
    path: str
    error: str
    signature: tuple[int, int]
    at: float = field(default_factory=time.time)


def _version_key(versions: list[str]) -> Callable[[str], Any]:
    if all(v.isdigit() for v in versions):
        return lambda v: (int(v), v)
    return lambda v: v


def _signature(p: Path) -> tuple[int, int] | None:
    try:
        st = p.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def scan(root: Path) -> dict[str, tuple[str, Path]]:
    """Model name → (version, path) of the version to serve, for a file or a folder."""
    if root.is_file():
        return {root.name[: -len(SUFFIX)] if root.name.endswith(SUFFIX) else root.stem: ("0", root)}
    found: dict[str, dict[str, Path]] = {}
    try:
        entries = list(os.scandir(root))
    except OSError:
        return {}
    for e in entries:
        if e.name.startswith("."):
            continue
        if e.is_file() and e.name.endswith(SUFFIX):
            name = e.name[: -len(SUFFIX)]
            if _NAME.match(name):
                found.setdefault(name, {})["0"] = Path(e.path)
        elif e.is_dir() and _NAME.match(e.name):
            try:
                sub = list(os.scandir(e.path))
            except OSError:
                continue
            for f in sub:
                if f.is_file() and f.name.endswith(SUFFIX) and not f.name.startswith("."):
                    v = f.name[: -len(SUFFIX)]
                    if _NAME.match(v):
                        found.setdefault(e.name, {})[v] = Path(f.path)
    out = {}
    for name, versions in found.items():
        best = max(versions, key=_version_key(list(versions)))
        out[name] = (best, versions[best])
    return out


class ModelRegistry:
    """Models served by one process. ``get(name)`` is lock-free: it reads the current mapping."""

    def __init__(self, source: Any, default: str | None = None, poll_s: float = 2.0,
                 loader: Callable[[str], Any] | None = None, warmup: Callable[[Any], None] | None = None,
                 on_swap: Callable[[Entry], None] | None = None, on_failure: Callable[[Failure], None] | None = None):
        self._loader = loader or _load
        self._warmup = warmup
        self._on_swap, self._on_failure = on_swap, on_failure
        self.poll_s = float(poll_s)
        self._lock = threading.Lock()  # one refresh at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failed: dict[str, Failure] = {}
        self._entries: dict[str, Entry] = {}
        if isinstance(source, (str, os.PathLike)):
            self.root: Path | None = Path(source)
            if not self.root.exists():
                raise FileNotFoundError(f"{self.root}: no such model file or folder")
            self.refresh()
        else:  # a fitted model object (tests, notebooks)
            self.root = None
            self._entries = {"model": Entry("model", "0", "<memory>", source, (0, 0))}
        self._default = default
        if default is not None and default not in self._entries:
            raise ValueError(f"default model {default!r} is not among the served models {sorted(self._entries)}")

    # ------------------------------------------------------------------ reading
    @property
    def entries(self) -> dict[str, Entry]:
        return self._entries

    @property
    def default(self) -> str | None:
        if self._default is not None and self._default in self._entries:
            return self._default
        return min(self._entries) if self._entries else None

    def get(self, name: str | None) -> Entry | None:
        return self._entries.get(name if name is not None else (self.default or ""))

    # ------------------------------------------------------------------ loading
    def refresh(self) -> list[str]:
        """Load what changed on disk; returns the names swapped in."""
        if self.root is None:
            return []
        with self._lock:
            want = scan(self.root)
            swapped: list[str] = []
            new = dict(self._entries)
            for name, (version, path) in sorted(want.items()):
                sig = _signature(path)
                if sig is None:
                    continue
                cur = new.get(name)
                if cur is not None and cur.path == str(path) and cur.signature == sig:
                    continue
                fail = self.failed.get(name)
                if fail is not None and fail.path == str(path) and fail.signature == sig:
                    continue  # already failed with this very file; wait for it to change
                try:
                    model = self._loader(str(path))
                    if self._warmup is not None:
                        self._warmup(model)
                except Exception as e:  # a bad file must never take the service down
                    f = Failure(name, version, str(path), f"{type(e).__name__}: {e}", sig)
                    self.failed[name] = f
                    log.error("model %s version %s (%s) failed to load: %s", name, version, path, f.error)
                    if self._on_failure is not None:
                        self._on_failure(f)
                    continue
                self.failed.pop(name, None)
                new[name] = Entry(name, version, str(path), model, sig)
                swapped.append(name)
                log.info("serving model %s version %s (%s, %s)", name, version, type(model).__name__, path)
            for name in [n for n in new if n not in want]:
                log.info("model %s removed from %s", name, self.root)
                del new[name]
            for name in [n for n in self.failed if n not in want]:
                del self.failed[name]
            self._entries = new  # the atomic swap: one reference assignment
            for name in swapped:
                if self._on_swap is not None:
                    self._on_swap(new[name])
            return swapped

    def start(self) -> None:
        if self.root is None or self._thread is not None or self.poll_s <= 0:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="tastebud-model-poller", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.refresh()
            except Exception:  # pragma: no cover - keep polling whatever happens
                log.exception("model folder poll failed")

    def stop(self) -> None:
        self._stop.set()
        t, self._thread = self._thread, None
        if t is not None:
            t.join(timeout=5)


def _load(path: str) -> Any:
    from ..models.base import Model

    return Model.load(path)
