"""Relational designs (myFM's RelationBlock): the model fitted on blocks equals the model fitted on
the flat design (same seed, same draws) to float tolerance, for every task, solver and update."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tastebud.data.interactions import Interactions
from tastebud.exceptions import DataError
from tastebud.models.fm.factorization_machine import FactorizationMachine
from tastebud.models.fm.relational import RelationBlock, flat_design


def _design(seed=0, n=500):
    rng = np.random.default_rng(seed)
    X = sp.random(n, 5, density=0.3, format="csr", random_state=seed + 1)
    B1 = sp.random(30, 8, density=0.4, format="csr", random_state=seed + 2)
    B2 = sp.random(20, 6, density=0.5, format="csr", random_state=seed + 3)
    rels = [RelationBlock(rng.integers(0, 30, n), B1), RelationBlock(rng.integers(0, 20, n), B2)]
    y = rng.normal(size=n)
    return X, rels, y, np.repeat([0, 1, 2], [5, 8, 6])


def test_flat_design_is_the_row_concatenation():
    X, rels, _, _ = _design()
    F = flat_design(X, rels)
    ref = np.hstack([X.toarray(), rels[0].X.toarray()[rels[0].index], rels[1].X.toarray()[rels[1].index]])
    np.testing.assert_array_equal(F.toarray(), ref)
    # blocks only
    F2 = flat_design(None, rels[1:])
    np.testing.assert_array_equal(F2.toarray(), rels[1].X.toarray()[rels[1].index])


@pytest.mark.parametrize("task,solver,block", [
    ("regression", "mcmc", True), ("regression", "mcmc", False), ("regression", "als", True),
    ("regression", "als", False), ("classification", "mcmc", True), ("classification", "als", False),
    ("ordinal", "mcmc", True), ("ordinal", "mcmc", False)])
def test_relational_fit_equals_flat_fit(task, solver, block):
    X, rels, y, g = _design()
    yy = {"regression": y, "classification": np.sign(y), "ordinal": np.digitize(y, [-1.0, 0.0, 1.0])}[task]
    kw = dict(task=task, solver=solver, factors=3, epochs=25, random_state=0, block=block, reg_w=0.3, reg_v=0.3)
    flat = FactorizationMachine(**kw).fit(flat_design(X, rels), yy, groups=g)
    rel = FactorizationMachine(**kw).fit(X, yy, groups=g, relations=rels)
    np.testing.assert_allclose(rel.V_, flat.V_, rtol=0, atol=1e-9)
    np.testing.assert_allclose(rel.decision_function(X, relations=rels), flat.decision_function(flat_design(X, rels)),
                               rtol=0, atol=1e-9)
    if task != "regression":
        np.testing.assert_allclose(rel.predict_proba(X, relations=rels), flat.predict_proba(flat_design(X, rels)),
                                   rtol=0, atol=1e-9)
        np.testing.assert_array_equal(rel.predict(X, relations=rels), flat.predict(flat_design(X, rels)))


def test_relational_sgd_trains_on_the_flat_rows():
    X, rels, y, g = _design(seed=3)
    kw = dict(solver="sgd", factors=2, epochs=5, random_state=0, lr=0.02)
    a = FactorizationMachine(**kw).fit(flat_design(X, rels), y, groups=g)
    b = FactorizationMachine(**kw).fit(X, y, groups=g, relations=rels)
    np.testing.assert_allclose(a.V_, b.V_, rtol=0, atol=1e-12)


def test_recommender_mode_uses_blocks_and_equals_the_flat_fit():
    """With implicit groups the rows hold many non-zeros: fit(interactions) trains on user and item
    blocks; the same model as FactorizationMachine.fit on the flat design (same seed)."""
    rng = np.random.default_rng(5)
    nu, ni, n = 40, 30, 600
    u, i = rng.integers(0, nu, n), rng.integers(0, ni, n)
    keep = np.unique(u * ni + i, return_index=True)[1]
    data = Interactions.from_arrays(u[keep], i[keep], rng.integers(1, 6, len(keep)).astype(float))
    kw = dict(factors=3, epochs=20, random_state=0, implicit="both")
    m = FactorizationMachine(**kw).fit(data)
    assert m.design_ == "relational"
    uu, ii, r, _ = data.coo()
    flat = FactorizationMachine(**kw).fit(m.Xu_[uu] + m.Xi_[ii], r.astype(float), groups=m.groups_)
    pairs = (data.users.ids[uu[:50]], data.items.ids[ii[:50]])
    np.testing.assert_allclose(m.predict(*pairs), flat.predict(m.Xu_[uu[:50]] + m.Xi_[ii[:50]]), rtol=0, atol=1e-9)
    # ids only: few non-zeros per row, the flat sweep is cheaper and is used
    assert FactorizationMachine(factors=2, epochs=2).fit(data).design_ == "flat"


def test_relation_block_errors():
    X, rels, y, g = _design()
    with pytest.raises(DataError, match=r"relations\[0\].index holds 30"):
        FactorizationMachine(epochs=2).fit(X, y, relations=[RelationBlock(np.full(500, 30), rels[0].X)])
    with pytest.raises(DataError, match="499 entries but the design has 500 rows"):
        FactorizationMachine(epochs=2).fit(X, y, relations=[RelationBlock(rels[0].index[:499], rels[0].X)])
    with pytest.raises(DataError, match="RelationBlock"):
        FactorizationMachine(epochs=2).fit(X, y, relations=[(rels[0].index, rels[0].X)])
    with pytest.raises(DataError, match="needs X or at least one relation block"):
        FactorizationMachine(epochs=2).fit(None, y, relations=[])
    m = FactorizationMachine(factors=2, epochs=3).fit(X, y, groups=g, relations=rels)
    with pytest.raises(DataError, match="fitted with 19 features"):
        m.predict(X, relations=rels[:1])
