"""What a run records so that it can be repeated: package versions, machine, git commit, data
checksums (files and content)."""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata as md
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["environment", "file_sha256", "interactions_sha256", "git_commit"]

_PACKAGES = ("tastebud", "numpy", "scipy", "pandas", "numba", "pyarrow", "torch", "optuna", "matplotlib", "click")


def file_sha256(path: str | os.PathLike) -> str:
    from ..data.datasets import sha256_file

    return sha256_file(path)


def interactions_sha256(inter: Any) -> str:
    """A checksum of the data's content, independent of the file format: the (user id, item id,
    value[, timestamp]) rows in canonical order."""
    h = hashlib.sha256()
    u, i, r, t = inter.coo()
    for arr in (inter.users.ids[u], inter.items.ids[i]):
        h.update(np.asarray([str(x) for x in arr]).astype("U").tobytes() if arr.dtype == object else
                 np.ascontiguousarray(arr).tobytes())
    h.update(np.ascontiguousarray(r, dtype=np.float64).tobytes())
    if t is not None:
        h.update(np.ascontiguousarray(t, dtype=np.float64).tobytes())
    return h.hexdigest()


def git_commit(where: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """The commit of the git checkout holding tastebud's sources (and whether it has local
    changes), or None when it is not a git checkout or git is missing."""
    d = Path(where) if where else Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=d, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=d, capture_output=True,
                               text=True, timeout=10)
        return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


def _version(pkg: str) -> str | None:
    if pkg == "tastebud":
        from .._version import __version__

        return __version__
    try:
        return md.version(pkg)
    except md.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """Python, packages, machine and thread settings of this process."""
    from .._threads import num_threads

    env_threads = {k: os.environ[k] for k in ("TASTEBUD_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                                "OMP_NUM_THREADS", "NUMBA_NUM_THREADS") if k in os.environ}
    try:
        load = os.getloadavg()
    except (OSError, AttributeError):
        load = None
    return {
        "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "packages": {p: v for p in _PACKAGES if (v := _version(p)) is not None},
        "machine": {"host": platform.node(), "system": platform.system(), "release": platform.release(),
                    "arch": platform.machine(), "processor": platform.processor() or None,
                    "cpus": os.cpu_count(), "threads_used": num_threads(None), "load_avg": load},
        "thread_env": env_threads,
        "git": git_commit(),
        "command": sys.argv,
    }
