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


def test_post_ids_parse_like_path_ids(fitted):
    # issue #14: POST /recommend with "users": ["1"] answered 404 while GET /recommend/1 worked
    m, _ = fitted
    c = TestClient(create_app(m))
    u, i = int(m.users_.ids[0]), int(m.items_.ids[0])
    get = c.get(f"/recommend/{u}", params={"k": 4}).json()
    for users in ([str(u)], [u]):
        r = c.post("/recommend", json={"users": users, "k": 4})
        assert r.status_code == 200, r.text
        assert r.json()["items"][0] == get["items"]
    r = c.post("/predict", json={"users": [str(u)], "items": [str(i)]})
    assert r.status_code == 200 and r.json()["predictions"][0] == pytest.approx(m.predict([u], [i])[0])
    r = c.post("/recommend", json={"users": ["abc"], "k": 4})
    assert r.status_code == 404 and "abc" in r.json()["detail"]


def test_docs_page_loads_nothing_from_outside(fitted):
    # issue #14: /docs was blank offline because Swagger UI came from a CDN
    import re

    pytest.importorskip("fastapi_offline")
    m, _ = fitted
    c = TestClient(create_app(m))
    for page in ("/docs", "/redoc"):
        r = c.get(page)
        assert r.status_code == 200
        html = r.text
        assert not re.search(r"https?://", html), re.findall(r"https?://[^\s\"'<>]+", html)
        refs = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert any(ref.endswith(".js") for ref in refs)
        for ref in refs:  # every script, style and icon the page names is served by the app itself
            assert c.get(ref).status_code == 200, ref
    assert "validatorUrl" in c.get("/docs").text  # no badge request to validator.swagger.io
    assert c.get("/openapi.json").json()["info"]["title"] == "tastebud"


def test_docs_render_in_a_real_browser_without_network(fitted, tmp_path, browser):
    """Swagger UI draws the endpoints in headless Chromium with every request outside the app refused."""
    import socket
    import threading
    import time

    pytest.importorskip("fastapi_offline")
    uvicorn = pytest.importorskip("uvicorn")
    m, _ = fitted
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(m), host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    try:
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        outside: list[str] = []
        page = browser.new_page()  # the session's one browser (conftest.py)

        def gate(route):
            if route.request.url.startswith(base):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        page.route("**/*", gate)
        page.goto(f"{base}/docs")
        page.wait_for_selector(".opblock", timeout=20_000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        page.close()
        assert any("/recommend" in x for x in paths) and outside == []
    finally:
        server.should_exit = True
        t.join(timeout=10)
