"""Progress bars: one rule for every fit that can take more than a few seconds.

``verbose`` (every model's parameter):

* ``None`` (default): a tqdm bar when standard error is a terminal (or a notebook), none in
  logs, pipes and tests;
* ``True``: always a bar; ``False``: never.

Quiet wins over all of these: ``TQDM_DISABLE=1`` in the environment (what ``tastebud -q`` sets)
silences every bar, read when the bar is made, so it works even after tqdm was imported and for
``verbose=True``.
"""

from __future__ import annotations

import os
from typing import Any, Iterable

_FALSY = ("", "0", "false", "no", "off")


def quiet() -> bool:
    """Whether bars are switched off for the whole process (``TQDM_DISABLE`` set and not false)."""
    return os.environ.get("TQDM_DISABLE", "").strip().lower() not in _FALSY


def disable_arg(verbose: bool | None) -> bool | None:
    """tqdm's ``disable`` for a model's ``verbose`` (``None``: tqdm decides by whether the output is a terminal)."""
    if quiet():
        return True
    if verbose is None:
        return None
    return not bool(verbose)


def progress(iterable: Iterable | None = None, *, verbose: bool | None, desc: str, total: int | None = None,
             unit: str = "it", leave: bool = False, **kwargs: Any):
    """A ``tqdm.auto`` bar over ``iterable`` (or a manual bar of ``total`` steps) following ``verbose``."""
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, unit=unit, leave=leave, disable=disable_arg(verbose), **kwargs)
