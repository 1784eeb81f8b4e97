"""The package's house rules: no import cycles, every import points down a layer, the public API
and the model file format survive reshaping.

Layers, lowest first (a module may import its own layer or any lower one, never a higher one):

    0  _version, exceptions, _threads, _params, _progress
    1  kernels                      numba loops on integer indices
    2  data, persistence,           ids, matrices, readers; the model file format and the
       array_specs                  declared layouts of saved arrays
    3  split, model_io              train/test splits; files → fit inputs
    4  models                       the protocol (base, history, registry) and one folder per family
    5  evaluation                   metrics, evaluate(), runner, reports
    6  serving, spark               the service; the Spark backend
    7  cli, cli_commands, demo      entry points

Inside ``models``, the protocol modules (base, history, registry) never import a family, and a
family may use another family only without a cycle. Nothing imports the package root (it is the
lazy public face, the top of the house). Imports inside functions count: a lazy import that runs
upwards is still an upward arrow.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "tastebud"

LAYERS = {
    "_version": 0, "exceptions": 0, "_threads": 0, "_params": 0, "_progress": 0,
    "kernels": 1,
    "data": 2, "persistence": 2, "array_specs": 2,
    "split": 3, "model_io": 3,
    "models": 4,
    "evaluation": 5, "warmup": 5,
    "serving": 6, "spark": 6,
    "cli": 7, "cli_commands": 7, "demo": 7,
}
PROTOCOL = {"tastebud.models", "tastebud.models.base", "tastebud.models.history", "tastebud.models.registry"}


def _modules() -> dict[str, Path]:
    mods = {}
    for f in PKG.rglob("*.py"):
        parts = list(f.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = f
    return mods


def _imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """Modules of the package that ``name`` imports anywhere in its body."""
    is_pkg = path.name == "__init__.py"
    pkg = name if is_pkg else name.rpartition(".")[0]
    found: set[str] = set()

    def resolve(target: str, names: list[str]) -> None:
        if not target.startswith("tastebud"):
            return
        hit = False
        for n in names:  # `from pkg import module`
            if f"{target}.{n}" in mods:
                found.add(f"{target}.{n}")
                hit = True
        if not hit:
            t = target
            while t and t not in mods:
                t = t.rpartition(".")[0]
            if t:
                found.add(t)

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for a in node.names:
                resolve(a.name, [])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            resolve(target, [a.name for a in node.names])
    found.discard(name)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {m: _imports(m, p, mods) for m, p in mods.items()}


def _layer(mod: str) -> int | None:
    parts = mod.split(".")
    if len(parts) == 1:
        return None  # the package root
    return LAYERS.get(parts[1])


def test_every_module_has_a_layer():
    missing = sorted(m for m in _graph() if m != "tastebud" and _layer(m) is None)
    assert not missing, f"add these modules to LAYERS in tests/test_layout.py (and the README's layout): {missing}"


def test_no_import_points_up_a_layer():
    bad = []
    for a, targets in _graph().items():
        for b in targets:
            if b == "tastebud":
                bad.append(f"{a} -> tastebud (the package root is the top; import from the defining module)")
                continue
            la, lb = _layer(a), _layer(b)
            if la is not None and lb is not None and lb > la:
                bad.append(f"{a} (layer {la}) -> {b} (layer {lb})")
            if a in PROTOCOL and b.startswith("tastebud.models.") and b not in PROTOCOL:
                bad.append(f"{a} (model protocol) -> {b} (a model family)")
    assert not bad, "imports that point up:\n" + "\n".join(sorted(bad))


def test_no_import_cycles():
    g = _graph()
    # Tarjan's strongly connected components
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in g:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_models_are_grouped_by_family():
    loose = sorted(p.name for p in (PKG / "models").glob("*.py")
                   if p.stem not in {"__init__", "base", "history", "registry"})
    assert not loose, f"model modules belong in a family folder under models/: {loose}"


def test_layout_checker_sees_an_upward_and_a_cyclic_import(tmp_path):
    """The walker itself: a planted upward import and a planted cycle are both found."""
    mods = {"tastebud.data.x": tmp_path / "x.py", "tastebud.models.base": tmp_path / "b.py",
            "tastebud.models.mf.y": tmp_path / "y.py"}
    mods["tastebud.data.x"].write_text("def f():\n    from ..models.base import Model\n")
    mods["tastebud.models.base"].write_text("from .mf.y import Y\n")
    mods["tastebud.models.mf.y"].write_text("from ..base import Model\n")
    assert _imports("tastebud.data.x", mods["tastebud.data.x"], mods) == {"tastebud.models.base"}
    assert _layer("tastebud.data.x") < _layer("tastebud.models.base")
    assert _imports("tastebud.models.base", mods["tastebud.models.base"], mods) == {"tastebud.models.mf.y"}
    assert _imports("tastebud.models.mf.y", mods["tastebud.models.mf.y"], mods) == {"tastebud.models.base"}


# ---------------------------------------------------------------------- the public face is unchanged
PUBLIC_BEFORE_THE_MOVE = [
    "ALS", "Apriori", "BPR", "BaselinePredictor", "Baskets", "DataError", "EASE", "FMFeatures", "FPGrowth",
    "FactorizationMachine", "FormatError", "IdMap", "ImplicitALS", "Interactions", "Item2Vec", "ItemTransitions",
    "MatrixFactorization", "MissingExtraError", "MultimodalModel", "NotFittedError", "Popularity", "PureSVD",
    "RuleRecommender", "SASRec", "SVDpp", "Sequences", "TastebudError", "UnknownIdError", "__version__",
    "association_rules", "data", "datasets", "evaluate", "load", "metrics", "models", "split", "synthetic",
]
REGISTRY_BEFORE_THE_MOVE = ["baseline", "popularity", "mf", "svdpp", "als", "implicit-als", "bpr", "puresvd",
                            "ease", "fm", "item2vec", "transitions", "sasrec", "multimodal", "fpgrowth", "rules"]


def test_public_names_still_exported():
    import tastebud as tb

    missing = [n for n in PUBLIC_BEFORE_THE_MOVE if n not in tb.__all__]
    assert not missing
    for n in PUBLIC_BEFORE_THE_MOVE:
        if n in ("SASRec", "MultimodalModel"):
            pytest.importorskip("torch")
        assert getattr(tb, n) is not None


def test_registry_names_unchanged():
    from tastebud.models import registry

    assert set(REGISTRY_BEFORE_THE_MOVE) <= set(registry.names())
    for name in REGISTRY_BEFORE_THE_MOVE:
        if name in ("sasrec", "multimodal"):
            continue
        assert registry.get(name).registry_name == name


# ---------------------------------------------------------------------- files written before the move
FIXTURES = Path(__file__).parent / "data" / "format_v1"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_files_written_before_the_move_load_and_answer_the_same(name):
    """tests/data/format_v1 was written by the flat models/ layout (commit ea413c6) with the
    answers it gave; the reshaped package must load each file and answer the same."""
    import tastebud as tb

    if name in ("sasrec", "multimodal"):
        pytest.importorskip("torch")
    m = tb.load(FIXTURES / f"{name}.tbm")
    e = EXPECTED[name]
    assert m.registry_name == name
    if "predict_rows" in e:
        import pandas as pd

        np.testing.assert_allclose(m.predict(pd.DataFrame(e["predict_rows"])), e["predict"], rtol=1e-5)
    elif "predict" in e:
        np.testing.assert_allclose(m.predict([0, 1, 2], [0, 1, 2]), e["predict"], rtol=1e-6)
    if "recommend_ids" in e and name != "rules":
        ids, sc = m.recommend([0, 1, 2], k=3)
        assert np.asarray(ids).tolist() == e["recommend_ids"]
        np.testing.assert_allclose(np.asarray(sc, dtype=float), e["recommend_scores"], rtol=1e-5)
    if name == "rules":
        ids, sc = m.recommend([[m.items_.ids[0]]] if hasattr(m, "items_") else [[0]], k=3)
        assert np.asarray(ids).tolist() == e["recommend_ids"]
    if "recommend_for_history_ids" in e:
        ids, sc = m.recommend_for_history(e["history"], k=3)
        assert np.asarray(ids).tolist() == e["recommend_for_history_ids"]
        np.testing.assert_allclose(np.asarray(sc, dtype=float), e["recommend_for_history_scores"], rtol=1e-4, atol=1e-6)
    if "n_itemsets" in e:
        assert len(m.itemsets()) == e["n_itemsets"]
        assert len(m.rules(min_threshold=0.1)) == e["n_rules"]
