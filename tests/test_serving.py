import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

import tastebud as tb  # noqa: E402
from tastebud.serving.app import create_app  # noqa: E402


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"user": rng.integers(1, 20, 200), "item": rng.integers(1, 30, 200), "rating": rng.integers(1, 6, 200).astype(float)})
    m = tb.BaselinePredictor().fit(tb.Interactions.from_frame(df, rating="rating", duplicates="mean"))
    path = tmp_path_factory.mktemp("m") / "m.tb"
    m.save(path)
    return m, path


def test_endpoints_match_model(fitted):
    m, path = fitted
    c = TestClient(create_app(str(path)))
    assert c.get("/health").json() == {"status": "ok"}
    info = c.get("/model").json()
    assert info["class"] == "BaselinePredictor" and info["n_users"] == m.n_users and info["n_items"] == m.n_items
    u = int(m.users_.ids[0])
    ids, sc = m.recommend([u], k=5)
    r = c.get(f"/recommend/{u}", params={"k": 5}).json()
    assert r["items"] == ids[0].tolist()
    np.testing.assert_allclose(r["scores"], sc[0], rtol=1e-6)
    r = c.post("/recommend", json={"users": [u, int(m.users_.ids[1])], "k": 3}).json()
    assert len(r["items"]) == 2 and len(r["items"][0]) == 3
    i = int(m.items_.ids[0])
    r = c.post("/predict", json={"users": [u], "items": [i]}).json()
    assert r["predictions"][0] == pytest.approx(m.predict([u], [i])[0])


def test_errors(fitted):
    m, path = fitted
    c = TestClient(create_app(m))
    r = c.get("/recommend/99999")
    assert r.status_code == 404 and "99999" in r.json()["detail"]
    r = c.get("/recommend/abc")
    assert r.status_code == 404
    r = c.get(f"/recommend/{int(m.users_.ids[0])}", params={"k": 500})
    assert r.status_code == 422 and "exceeds" in r.json()["detail"] and r.json()["field"] == "k"
    r = c.get(f"/recommend/{int(m.users_.ids[0])}", params={"k": 10_000})
    assert r.status_code == 422 and r.json()["field"] == "k"
    r = c.post("/predict", json={"users": [1, 2], "items": [1]})
    assert r.status_code == 422
    r = c.get(f"/similar/{int(m.items_.ids[0])}")
    assert r.status_code == 422
    r = c.post("/recommend_for_history", json={"items": [1], "k": 2})
    assert r.status_code == 422
