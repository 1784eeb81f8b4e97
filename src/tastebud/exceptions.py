"""Exceptions raised by tastebud. Every error names the argument or id at fault."""

from __future__ import annotations

from typing import Any, Iterable


class TastebudError(Exception):
    """Base class for all tastebud errors."""


class UnknownIdError(TastebudError, KeyError):
    """An external user or item id the model (or id map) has never seen.

    Subclasses ``KeyError`` so ``except KeyError`` keeps working.
    """

    def __init__(self, kind: str, ids: Iterable[Any]):
        self.kind = kind
        self.ids = list(ids)
        shown = ", ".join(repr(i) for i in self.ids[:5])
        more = f" (and {len(self.ids) - 5} more)" if len(self.ids) > 5 else ""
        super().__init__(f"unknown {kind} id(s): {shown}{more}")

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


class DataError(TastebudError, ValueError):
    """Malformed or unusable input data (names the file/line or column when it can)."""


class NotFittedError(TastebudError, RuntimeError):
    """A model method that needs a fitted model was called before ``fit``."""


class MissingExtraError(TastebudError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, package: str, extra: str, what: str = ""):
        what = f" for {what}" if what else ""
        super().__init__(
            f"{package} is required{what}; install it with: pip install 'tastebud[{extra}]'"
        )


class FormatError(TastebudError, ValueError):
    """A saved model file is not a valid tastebud model (wrong version, missing arrays...)."""


class ResultTooLargeError(TastebudError, ValueError):
    """A result (frequent itemsets, rules, a DataFrame of them) would pass a size limit the caller
    can raise (``max_itemsets``, ``max_rules``, ``max_rows``); the message states the count
    reached, the memory it would take and a setting that fits."""
