"""The recommender mode shared by the factorization-machine family: (user, item) pairs as design rows.

Every user has a row Xu[u] and every item a row Xi[i] over one feature space whose columns are split
between the two sides — [one-hot(u), user side features, implicit items of u | one-hot(i), item side
features, implicit users of i] — and the design row of a pair is Xu[u] + Xi[i]. The helpers here build
those rows from :class:`~tastebud.data.interactions.Interactions` and side tables, form pair rows,
and save, declare and restore them with a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from ...array_specs import ArraySpec, counts, floats, index, indptr
from ...data.idmap import IdMap
from ...data.interactions import Interactions
from ...exceptions import DataError, FormatError
from .design import check_design, int64_indices
from .features import FMFeatures

IMPLICIT = ("none", "user", "item", "both")


def check_implicit(value: Any) -> None:
    if value not in IMPLICIT:
        raise ValueError(f"implicit must be 'none', 'user', 'item' or 'both', got {value!r}")


def side_block(table: Any, ids: IdMap, kind: str) -> tuple[sp.csr_matrix, list[str], list[int], dict | None]:
    """Side features of ``kind`` ("user"/"item") aligned with ``ids``: (matrix, group names, group
    sizes, the fitted FMFeatures as a dict); ids missing from the table get an empty row."""
    if table is None:
        return sp.csr_matrix((len(ids), 0)), [], [], None
    from ...data._frames import to_pandas

    df = to_pandas(table, f"{kind}_features")
    if kind in df.columns:
        df = df.set_index(kind)
    if not df.index.is_unique:
        raise DataError(f"{kind}_features has duplicate {kind} ids (e.g. {df.index[df.index.duplicated()][0]!r})")
    idx = IdMap(df.index.to_numpy(), kind).index(ids.ids, missing="mask")
    aligned = df.iloc[np.maximum(idx, 0)].reset_index(drop=True)
    aligned.loc[idx < 0, :] = None
    fb = FMFeatures.infer(aligned)
    Xs, _ = fb.fit_transform(aligned)
    names = [f"{kind}:{n}" for n in fb.group_names_]
    return Xs, names, fb.group_sizes(), fb.to_dict()


@dataclass
class PairBlocks:
    """User rows ``Xu`` (n_users × p) and item rows ``Xi`` (n_items × p) over one feature space, the
    first ``p_user`` columns on the user side; one group per named block of columns."""

    Xu: sp.csr_matrix
    Xi: sp.csr_matrix
    p_user: int
    group_names: list[str]
    groups: np.ndarray
    side_features: dict[str, Any] = field(default_factory=dict)

    def user_block(self) -> sp.csr_matrix:
        return self.Xu[:, :self.p_user].tocsr()

    def item_block(self) -> sp.csr_matrix:
        return self.Xi[:, self.p_user:].tocsr()


def build_pair_blocks(train: Interactions, seen: sp.csr_matrix, user_features: Any, item_features: Any,
                      implicit: str) -> PairBlocks:
    """[one-hot(u), user side features, implicit items of u (1/√|N(u)|)] for users and the mirror
    image for items (``implicit`` picks the implicit groups)."""
    check_implicit(implicit)
    nu, ni = train.shape
    seen = seen.astype(np.float64)
    ublocks, unames, usizes = [sp.identity(nu, format="csr")], ["user"], [nu]
    iblocks, inames, isizes = [sp.identity(ni, format="csr")], ["item"], [ni]
    Xs, nm, sz, ufb = side_block(user_features, train.users, "user")
    ublocks.append(Xs); unames += nm; usizes += sz
    Xs, nm, sz, ifb = side_block(item_features, train.items, "item")
    iblocks.append(Xs); inames += nm; isizes += sz
    if implicit in ("user", "both"):
        cnt = np.maximum(np.diff(seen.indptr), 1)
        ublocks.append(sp.diags(1.0 / np.sqrt(cnt)) @ seen)
        unames.append("implicit:user->item"); usizes.append(ni)
    if implicit in ("item", "both"):
        st = seen.T.tocsr()
        cnt = np.maximum(np.diff(st.indptr), 1)
        iblocks.append(sp.diags(1.0 / np.sqrt(cnt)) @ st)
        inames.append("implicit:item->user"); isizes.append(nu)
    Xu = sp.hstack(ublocks, format="csr")
    Xi = sp.hstack(iblocks, format="csr")
    pu, pi = Xu.shape[1], Xi.shape[1]
    names = unames + inames
    return PairBlocks(Xu=check_design(sp.hstack([Xu, sp.csr_matrix((nu, pi))], format="csr"), "user features"),
                      Xi=check_design(sp.hstack([sp.csr_matrix((ni, pu)), Xi], format="csr"), "item features"),
                      p_user=pu, group_names=names, groups=np.repeat(np.arange(len(names)), usizes + isizes),
                      side_features={"user": ufb, "item": ifb})


def pair_rows(Xu: sp.csr_matrix, Xi: sp.csr_matrix, u: np.ndarray, i: np.ndarray) -> sp.csr_matrix:
    """Design rows Xu[u] + Xi[i]; a side with index −1 (no training data) contributes nothing."""
    u, i = np.asarray(u), np.asarray(i)
    A = Xu[np.maximum(u, 0)]
    B = Xi[np.maximum(i, 0)]
    if (u < 0).any():
        A = sp.diags((u >= 0).astype(np.float64)) @ A
    if (i < 0).any():
        B = sp.diags((i >= 0).astype(np.float64)) @ B
    return check_design(A + B)


# ---------------------------------------------------------------------- persistence
def pair_arrays(Xu: sp.csr_matrix, Xi: sp.csr_matrix) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, M in (("Xu", Xu), ("Xi", Xi)):
        out[f"{name}_indptr"], out[f"{name}_indices"], out[f"{name}_data"] = M.indptr, M.indices, M.data
        out[f"{name}_shape"] = np.asarray(M.shape, dtype=np.int64)
    return out


def pair_specs(n_features: str = "n_features") -> dict[str, ArraySpec]:
    specs: dict[str, ArraySpec] = {}
    for name, rows in (("Xu", "n_users"), ("Xi", "n_items")):
        specs.update({f"{name}_indptr": indptr(rows, of=f"{name}_indices"),
                      f"{name}_indices": index(f"nnz_{name}", hi=n_features),
                      f"{name}_data": floats(f"nnz_{name}"), f"{name}_shape": counts(2)})
    return specs


def check_pair_shapes(path: Any, arrays: dict[str, np.ndarray], sizes: dict[str, int],
                      n_features: str = "n_features") -> None:
    for name, rows in (("Xu", "n_users"), ("Xi", "n_items")):
        want = [sizes[rows], sizes[n_features]]
        if arrays[f"{name}_shape"].tolist() != want:
            raise FormatError(f"{path}: array '{name}_shape' is {arrays[f'{name}_shape'].tolist()}, "
                              f"but the other arrays make it {want}")


def restore_pairs(arrays: dict[str, np.ndarray]) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    out = []
    for name in ("Xu", "Xi"):
        out.append(int64_indices(sp.csr_matrix((arrays[f"{name}_data"], arrays[f"{name}_indices"],
                                                arrays[f"{name}_indptr"]), shape=tuple(int(s) for s in arrays[f"{name}_shape"]))))
    return out[0], out[1]


__all__ = ["PairBlocks", "build_pair_blocks", "pair_rows", "side_block", "pair_arrays", "pair_specs",
           "check_pair_shapes", "restore_pairs", "check_implicit"]
