"""``FMFeatures`` templates that turn a factorization machine into a specialised ranking model.

Rendle ("Factorization machines", ICDM 2010, §V) shows that an FM over the right one-hot design
reproduces specialised factorisation models. Two of them rank *candidates* (tags, next items) for
a *context*; a template builds the context rows with :class:`~tastebud.models.fm.features.FMFeatures`,
one-hot candidate rows in the same feature space, and the positives of each context — a
:class:`RankingDesign` that :class:`~tastebud.models.fm.bpr_fm.BPRFactorizationMachine` trains on
with BPR (the pairwise loss both papers use).

* **PITF** (Rendle & Schmidt-Thieme, "Pairwise interaction tensor factorization for personalized
  tag recommendation", WSDM 2010): ŷ(u, i, t) = ⟨u_t, t_u⟩ + ⟨i_t, t_i⟩. ``pitf()``: context
  [one-hot(u) | one-hot(i)], candidate one-hot(t). The FM adds ⟨v_u, v_i⟩ and context terms, which
  are the same for every tag of a post (they cancel in the ranking), and a tag bias.
* **FPMC** (Rendle, Freudenthaler & Schmidt-Thieme, "Factorizing personalized Markov chains for
  next-basket recommendation", WWW 2010): ŷ(u, l | B) = ⟨v_u, v_l⟩ + (1/|B|) Σ_{ℓ∈B} ⟨v_l, v_ℓ⟩
  with separate factors for the previous items ℓ. ``fpmc()``: context [one-hot(u) | previous basket
  B, each item 1/|B| (a multi-hot group of its own)], candidate one-hot(l). The FM adds
  ⟨v_u, v_ℓ⟩ and pairs within B (constant per context) and an item bias.

Rows of the input frame are (context, positive candidate) events; rows with the same context (a
post with several tags, a basket with several next items) become one context with several
positives. :func:`next_basket_frame` turns per-user baskets into FPMC's (user, item, previous) rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ...data._frames import to_pandas
from ...exceptions import DataError, NotFittedError
from .features import FMFeatures, _key


@dataclass
class RankingDesign:
    """Contexts (n_contexts × p), candidates (n_candidates × p) over one feature space with
    disjoint columns, and the positives (n_contexts × n_candidates, binary CSR); ``groups`` gives
    each column's feature group (``group_names``)."""

    contexts: sp.csr_matrix
    candidates: sp.csr_matrix
    positives: sp.csr_matrix
    groups: np.ndarray
    group_names: list[str]
    candidate_ids: np.ndarray

    def __post_init__(self) -> None:
        nc, p = self.contexts.shape
        if self.candidates.shape[1] != p:
            raise DataError(f"contexts have {p} columns but candidates {self.candidates.shape[1]}")
        if self.positives.shape != (nc, self.candidates.shape[0]):
            raise DataError(f"positives must be (n_contexts, n_candidates) = {(nc, self.candidates.shape[0])}, "
                            f"got {self.positives.shape}")
        if len(self.groups) != p:
            raise DataError(f"groups must have one entry per column ({p}), got {len(self.groups)}")
        if len(self.candidate_ids) != self.candidates.shape[0]:
            raise DataError("candidate_ids must have one id per candidate row")
        both = (np.diff(self.contexts.tocsc().indptr) > 0) & (np.diff(self.candidates.tocsc().indptr) > 0)
        if both.any():
            raise DataError(f"column {int(np.flatnonzero(both)[0])} is used by contexts and candidates; "
                            "their columns must be disjoint")

    def flat(self) -> tuple[sp.csr_matrix, np.ndarray]:
        """One design row per positive (context ⊕ candidate) and its context index (for any FM)."""
        P = self.positives.tocoo()
        return (self.contexts[P.row] + self.candidates[P.col]).tocsr(), P.row.astype(np.int64)


class FMTemplate:
    """Context features (an :class:`FMFeatures`) plus one categorical candidate column; ``fit``
    learns the vocabularies, ``design(df)`` gives the :class:`RankingDesign` of a frame,
    ``context_rows(df)`` the context rows of (new) events."""

    def __init__(self, context: FMFeatures, candidate: str, name: str = "template"):
        self.context = context
        self.candidate = candidate
        self.name = name
        self.candidate_ids_: np.ndarray | None = None

    def fit(self, df: Any) -> "FMTemplate":
        pdf = self._frame(df)
        self.context.fit(pdf)
        ids = pd.unique(pdf[self.candidate].dropna())
        self.candidate_ids_ = np.asarray(ids)
        self._pos = {_key(v): j for j, v in enumerate(self.candidate_ids_)}
        return self

    def _frame(self, df: Any) -> pd.DataFrame:
        pdf = to_pandas(df, f"{self.name} events")
        if self.candidate not in pdf.columns:
            raise DataError(f"{self.name}: candidate column {self.candidate!r} not in the frame (columns: {list(pdf.columns)})")
        return pdf

    def _check_fitted(self) -> None:
        if self.candidate_ids_ is None:
            raise NotFittedError(f"{self.name} template is not fitted yet; call fit() first")

    @property
    def n_context_features(self) -> int:
        self._check_fitted()
        return self.context.n_features_

    @property
    def group_names(self) -> list[str]:
        return [*self.context.group_names_, self.candidate]

    def groups(self) -> np.ndarray:
        sizes = [*self.context.group_sizes(), len(self.candidate_ids_)]
        return np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)

    def context_rows(self, df: Any) -> sp.csr_matrix:
        """Context rows (len(df) × p) of events, over the full feature space."""
        self._check_fitted()
        C, _ = self.context.transform(to_pandas(df, f"{self.name} contexts"))
        p = self.n_context_features + len(self.candidate_ids_)
        return sp.csr_matrix((C.data, C.indices, C.indptr), shape=(C.shape[0], p))

    def candidate_rows(self) -> sp.csr_matrix:
        self._check_fitted()
        m, pc = len(self.candidate_ids_), self.n_context_features
        return sp.csr_matrix((np.ones(m), np.arange(m) + pc, np.arange(m + 1)), shape=(m, pc + m))

    def candidate_index(self, values: Any) -> np.ndarray:
        """Candidate positions of ``values`` (−1 for values unseen at fit)."""
        self._check_fitted()
        return np.array([self._pos.get(_key(v), -1) if v is not None else -1 for v in values], dtype=np.int64)

    def design(self, df: Any) -> RankingDesign:
        """The ranking design of the events in ``df``: one context per distinct context row, its
        positives the candidates of its events (unseen candidates are dropped)."""
        self._check_fitted()
        pdf = self._frame(df)
        C = self.context_rows(pdf)
        cand = self.candidate_index(pdf[self.candidate].tolist())
        keys = [C.indices[C.indptr[r]:C.indptr[r + 1]].tobytes() + C.data[C.indptr[r]:C.indptr[r + 1]].tobytes()
                for r in range(C.shape[0])]
        codes = pd.factorize(pd.Series(keys, dtype=object))[0]
        first = np.unique(codes, return_index=True)[1]  # codes run 0, 1, … in order of first appearance
        ok = cand >= 0
        P = sp.csr_matrix((np.ones(int(ok.sum())), (codes[ok], cand[ok])), shape=(len(first), len(self.candidate_ids_)))
        P.sum_duplicates()
        P.data[:] = 1.0
        P.sort_indices()
        return RankingDesign(contexts=C[first].tocsr(), candidates=self.candidate_rows(), positives=P,
                             groups=self.groups(), group_names=self.group_names, candidate_ids=self.candidate_ids_)

    def fit_design(self, df: Any) -> RankingDesign:
        return self.fit(df).design(df)


def pitf(user: str = "user", item: str = "item", tag: str = "tag") -> FMTemplate:
    """PITF as an FM (see the module docstring): context [one-hot(user) | one-hot(item)],
    candidates one-hot(tag); events are (user, item, tag) assignments."""
    return FMTemplate(FMFeatures(categorical=[user, item]), candidate=tag, name="PITF")


def fpmc(user: str = "user", item: str = "item", previous: str = "previous") -> FMTemplate:
    """FPMC as an FM (see the module docstring): context [one-hot(user) | previous basket, each item
    1/|B|], candidates one-hot(next item); events are (user, item, previous basket) rows, e.g. from
    :func:`next_basket_frame`."""
    return FMTemplate(FMFeatures(categorical=[user], multi_hot=[previous]), candidate=item, name="FPMC")


def next_basket_frame(df: Any, user: str = "user", basket: str = "basket", item: str = "item",
                      previous: str = "previous") -> pd.DataFrame:
    """FPMC events from baskets: ``df`` has one row per (user, basket, item), baskets ordered by
    ``basket`` within each user; the result has one row per item of every basket after a user's
    first, with ``previous`` the list of the items of the user's previous basket."""
    pdf = to_pandas(df, "baskets")
    for c in (user, basket, item):
        if c not in pdf.columns:
            raise DataError(f"next_basket_frame: column {c!r} not in the frame (columns: {list(pdf.columns)})")
    b = pdf[[user, basket, item]].sort_values([user, basket], kind="stable")
    items = b.groupby([user, basket], sort=False)[item].agg(list)
    prev = items.groupby(level=0, sort=False).shift(1)
    rows = [(u, it, list(p)) for (u, _), p, its in zip(items.index, prev, items) if isinstance(p, list) for it in its]
    return pd.DataFrame(rows, columns=[user, item, previous])


__all__ = ["RankingDesign", "FMTemplate", "pitf", "fpmc", "next_basket_frame"]
