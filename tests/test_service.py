"""The recommendation service in-process (FastAPI TestClient over the real app, real model files,
a real SQLite event log): registry and hot swap, every endpoint's happy path, limits and errors
(every bad request is a 4xx JSON naming the problem), events reflected at once, explanations that
add up, metrics, CORS and the API key."""

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

import tastebud as tb  # noqa: E402
from serving_helpers import interactions  # noqa: E402
from tastebud.serving.app import create_app  # noqa: E402


@pytest.fixture(scope="module")
def folder(served_root):
    return served_root / "models", served_root


@pytest.fixture(scope="module")
def shared_client(folder, tmp_path_factory):
    """One app for the tests that only read (and the bad requests, which must change nothing)."""
    models, root = folder
    app = create_app(str(models), items=str(root / "items.csv"), events=tmp_path_factory.mktemp("ev") / "e.db", poll_s=0)
    with TestClient(app) as c:
        yield c


@pytest.fixture()
def client(folder, tmp_path):
    models, root = folder
    app = create_app(str(models), items=str(root / "items.csv"), events=tmp_path / "events.db", poll_s=0)
    with TestClient(app) as c:
        yield c


def test_models_lists_the_folder_and_the_default(client):
    r = client.get("/models").json()
    names = {m["name"]: m for m in r["models"]}
    assert set(names) == {"als", "bpr", "rules"} and r["default"] == "als" and r["failed"] == []
    assert names["bpr"]["version"] == "1" and names["als"]["class"] == "ImplicitALS"
    assert "history" in names["als"]["capabilities"] and "rules" in names["rules"]["capabilities"]
    assert client.get("/model", params={"model": "bpr"}).json()["class"] == "BPR"
    r = client.get("/recommend/1", params={"model": "nope"})
    assert r.status_code == 404 and r.json()["field"] == "model"


def test_recommend_endpoints_answer_what_the_model_answers(client, folder):
    models, _ = folder
    als = tb.load(models / "als.tb")
    ids, sc = als.recommend([4], k=5)
    r = client.get("/recommend/4", params={"k": 5}).json()
    assert r["items"] == ids[0].tolist() and r["model"] == "als" and r["source"] == "model"
    np.testing.assert_allclose(r["scores"], sc[0], rtol=1e-6)
    assert [m["title"] for m in r["metadata"]][0].split()[0] in ("Space", "Cooking", "Garden")
    # string ids in a JSON body parse like the path's
    p = client.post("/recommend", json={"users": ["4", 5], "k": 5}).json()
    assert p["items"][0] == ids[0].tolist() and p["users"] == [4, 5]
    h = client.post("/recommend_for_history", json={"items": [0, 1, "2"], "k": 4}).json()
    hid, hsc = als.recommend_for_history([0, 1, 2], k=4)
    assert h["items"] == hid.tolist()
    s = client.get("/similar/3", params={"k": 3}).json()
    assert s["items"] == als.similar_items(3, k=3)[0].tolist()
    bpr = tb.load(models / "bpr" / "1.tb")
    r = client.get("/recommend/7", params={"model": "bpr", "k": 3}).json()
    assert r["items"] == bpr.recommend([7], k=3)[0][0].tolist() and r["version"] == "1"


def test_rules_and_search(shared_client, folder):
    client = shared_client
    models, _ = folder
    rules = tb.load(models / "rules.tb")
    r = client.post("/rules", json={"basket": [0, 1], "k": 3, "explain": True}).json()
    want = rules.recommend([[0, 1]], k=3)[0][0].tolist()
    assert r["items"] == want and r["model"] == "rules"
    ex = r["explanations"][0]
    assert ex["kind"] == "rule" and set(ex["rule"]["antecedent"]) <= {0, 1} and ex["rule"]["consequent"] == want[0]
    s = client.get("/items/search", params={"q": "garden story 1"}).json()["results"]
    assert s and all("Garden Story 1" in x["title"] for x in s) and s[0]["item"] == 41
    assert client.get("/items/search", params={"q": "", "limit": 5}).json()["results"] == []


def test_explanations_add_up_to_the_served_score(client):
    r = client.get("/recommend/4", params={"k": 5, "explain": "true", "explain_top": 50}).json()
    assert r["source"] == "history"  # ALS explains through its fold-in, so the numbers add up
    for score, ex in zip(r["scores"], r["explanations"]):
        assert ex["kind"] == "contributions"
        assert sum(c["value"] for c in ex["top"]) + ex["rest"] == pytest.approx(score, rel=1e-4, abs=1e-5)
        assert ex["score"] == pytest.approx(score, rel=1e-4, abs=1e-5)
    b = client.post("/recommend", json={"users": [4], "k": 3, "explain": True, "model": "bpr"}).json()
    assert b["explanations"][0][0]["kind"] == "similar"


def test_an_event_changes_the_next_recommendation(client, folder):
    models, _ = folder
    als = tb.load(models / "als.tb")
    before = client.get("/recommend/4", params={"k": 10}).json()["items"]
    new_item = before[0]
    r = client.post("/events", json={"user": 4, "item": new_item, "weight": 3})
    assert r.status_code == 200 and r.json()["stored"] == 1
    after = client.get("/recommend/4", params={"k": 10}).json()
    assert new_item not in after["items"] and after["source"] == "history" and after["events"] == 1
    train = als.items_.ids[als.seen_[als.users_.index([4])[0]].indices].tolist()
    want, _ = als.recommend_for_history(train + [new_item], k=10, weights=[1.0] * len(train) + [3.0])
    assert after["items"] == want.tolist()
    # a user the model never saw is served from logged events alone
    client.post("/events", json={"events": [{"user": "newbie", "item": 41}, {"user": "newbie", "item": 42}]})
    n = client.get("/recommend/newbie", params={"k": 5}).json()
    assert n["items"] == als.recommend_for_history([41, 42], k=5)[0].tolist()
    assert [e["item"] for e in client.get("/events/newbie").json()["events"]] == [41, 42]
    # a model without fold-in leaves the logged items out
    b = client.get("/recommend/4", params={"k": 10, "model": "bpr"}).json()
    assert new_item not in b["items"] and len(b["items"]) == 10


BAD = [
    ("get", "/recommend/99999999999999999999999", None, 404, "user"),
    ("get", "/recommend/-9223372036854775809", None, 404, "user"),
    ("get", "/recommend/1?k=0", None, 422, "k"),
    ("get", "/recommend/1?k=abc", None, 422, "k"),
    ("get", "/recommend/1?k=1001", None, 422, "k"),
    ("get", "/recommend/1?k=61", None, 422, "k"),
    ("get", "/similar/999?k=3", None, 404, "item"),
    ("get", "/items/search?q=" + "x" * 500, None, 422, "q"),
    ("post", "/recommend", {"users": [2**70]}, 422, "users[0]"),
    ("post", "/recommend", {"users": [1.5]}, 422, "users[0]"),
    ("post", "/recommend", {"users": [None]}, 422, "users[0]"),
    ("post", "/recommend", {"users": [[1]]}, 422, "users[0]"),
    ("post", "/recommend", {"users": list(range(1001))}, 422, "users"),
    ("post", "/recommend", {"users": [1], "k": "10"}, 422, "k"),
    ("post", "/recommend", {"users": [1], "k": True}, 422, "k"),
    ("post", "/recommend", {"users": [1], "extra": 1}, 422, "extra"),
    ("post", "/recommend", {"user": [1]}, 422, "user"),
    ("post", "/recommend", [1, 2], 422, "body"),
    ("post", "/recommend", {"users": "1"}, 422, "users"),
    ("post", "/recommend", {"users": [123456]}, 404, "user"),
    ("post", "/recommend", {"users": [1], "filter_seen": "no"}, 422, "filter_seen"),
    ("post", "/recommend", {"users": [1], "model": 3}, 422, "model"),
    ("post", "/recommend_for_history", {"items": list(range(1001))}, 422, "items"),
    ("post", "/recommend_for_history", {"items": [1, 2], "weights": [1]}, 422, "weights"),
    ("post", "/recommend_for_history", {"items": [1], "weights": [float("nan")]}, 422, "weights[0]"),
    ("post", "/recommend_for_history", {"items": [1], "model": "rules", "k": 0}, 422, "k"),
    ("post", "/predict", {"users": [1], "items": [1, 2]}, 422, "model"),
    ("post", "/rules", {"basket": [0], "model": "als"}, 422, "model"),
    ("post", "/events", {"user": 1}, 422, "events[0].item"),
    ("post", "/events", {"user": 1, "item": 2, "weight": -1}, 422, "events[0].weight"),
    ("post", "/events", {"user": 1, "item": 2, "weight": "heavy"}, 422, "events[0].weight"),
    ("post", "/events", {"user": 2**64, "item": 2}, 422, "events[0].user"),
    ("post", "/events", {"events": []}, 422, "events"),
    ("post", "/events", {"events": [1]}, 422, "events[0]"),
]


@pytest.mark.parametrize("method,url,body,status,field", BAD, ids=[f"{m} {u[:40]} {json.dumps(b)[:30]}" for m, u, b, *_ in BAD])
def test_bad_requests_are_4xx_json_naming_the_field(shared_client, method, url, body, status, field):
    client = shared_client
    if body is not None and not (isinstance(body, dict) and any(isinstance(v, float) and v != v for v in body.values())):
        content = json.dumps(body, allow_nan=True)
    else:
        content = json.dumps(body, allow_nan=True) if body is not None else None
    r = client.request(method.upper(), url, content=content, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    j = r.json()
    assert j["detail"]
    assert j.get("field") == field, j


def test_malformed_and_oversized_bodies(shared_client):
    client = shared_client
    r = client.post("/recommend", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["field"] == "body"
    r = client.post("/recommend", content=b"\xff\xfe", headers={"content-type": "application/json"})
    assert r.status_code == 422
    big = json.dumps({"users": list(range(300_000))}).encode()
    r = client.post("/recommend", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["field"] == "body"

    def chunks():  # no Content-Length: counted while it streams
        for _ in range(300):
            yield b" " * 10_000

    r = client.post("/recommend", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_random_garbage_never_answers_500(shared_client):
    client = shared_client
    rng = np.random.default_rng(5)
    pool = [None, True, -1, 0, 2**63, 2**63 - 1, -(2**63) - 1, 1e308, "", "x" * 300, [], {}, [[]], "1", "é∂", [1, "a"]]
    for _ in range(60):
        body = {k: pool[rng.integers(len(pool))] for k in rng.choice(["users", "items", "k", "basket", "weights", "model",
                                                                     "explain", "filter_seen", "user", "item"], 3)}
        for path in ("/recommend", "/recommend_for_history", "/rules", "/predict", "/events"):
            r = client.post(path, content=json.dumps(body), headers={"content-type": "application/json"})
            assert r.status_code < 500, (path, body, r.text)
            assert "detail" in r.json() or r.status_code == 200
    for seg in ["%00", "..", "9" * 40, "-" * 3, "1e3", " 1", "0x10"]:
        assert client.get(f"/recommend/{seg}").status_code < 500
        assert client.get(f"/similar/{seg}").status_code < 500


def test_api_key_guards_the_event_endpoints(folder, tmp_path):
    models, _ = folder
    c = TestClient(create_app(str(models), events=tmp_path / "e.db", api_key="s3cret", poll_s=0))
    assert c.post("/events", json={"user": 1, "item": 2}).status_code == 401
    assert c.post("/events", json={"user": 1, "item": 2}, headers={"X-API-Key": "wrong"}).status_code == 401
    assert c.post("/events", json={"user": 1, "item": 2}, headers={"X-API-Key": "s3cret"}).status_code == 200
    assert c.post("/events", json={"user": 1, "item": 2}, headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert c.get("/events/1").status_code == 401
    assert c.get("/recommend/1").status_code == 200  # reads stay open


def test_cors_is_off_by_default_and_on_for_named_origins(folder):
    models, _ = folder
    c = TestClient(create_app(str(models), events=None, poll_s=0))
    r = c.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    c = TestClient(create_app(str(models), events=None, poll_s=0, cors_origins=["https://shop.example"]))
    r = c.get("/health", headers={"Origin": "https://shop.example"})
    assert r.headers["access-control-allow-origin"] == "https://shop.example"


def test_metrics_in_prometheus_text(client):
    client.get("/recommend/4")
    client.get("/recommend/5")
    client.get("/recommend/abc")
    text = client.get("/metrics").text
    assert 'tastebud_requests_total{method="GET",route="/recommend/{user}",status="200"} 2' in text
    assert 'tastebud_requests_total{method="GET",route="/recommend/{user}",status="404"} 1' in text
    assert 'tastebud_model_info{model="als",version="0",class="ImplicitALS"} 1' in text
    assert 'tastebud_request_seconds_count{route="/recommend/{user}"} 3' in text
    for line in text.splitlines():  # every sample line is "name{labels} value"
        if line and not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])


def test_new_version_swaps_in_and_a_bad_file_never_takes_the_service_down(served_root, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(served_root / "models", models)
    (models / "rules.tb").unlink()
    app = create_app(str(models), events=None, poll_s=0)
    reg = app.state.registry
    c = TestClient(app)
    assert c.get("/model", params={"model": "bpr"}).json()["version"] == "1"
    old = c.get("/recommend/3", params={"model": "bpr", "k": 5}).json()["items"]
    df = interactions(seed=1)
    m2 = tb.BPR(factors=8, epochs=5, random_state=1, num_threads=1).fit(tb.Interactions.from_frame(df, rating="rating"))
    m2.save(models / "bpr" / "2.tb")
    (models / "bpr" / "10.tb").write_bytes(b"PK\x03\x04 this is not a model")  # the highest version, broken
    (models / "junk.tb").write_bytes(np.random.default_rng(0).bytes(5000))
    reg.refresh()
    info = c.get("/models").json()
    failed = {f["name"]: f for f in info["failed"]}
    assert set(failed) == {"bpr", "junk"} and failed["bpr"]["version"] == "10"
    # version 10 failed: version 1 keeps serving, untouched
    assert c.get("/model", params={"model": "bpr"}).json()["version"] == "1"
    assert c.get("/recommend/3", params={"model": "bpr", "k": 5}).json()["items"] == old
    (models / "bpr" / "10.tb").unlink()
    reg.refresh()
    assert c.get("/model", params={"model": "bpr"}).json()["version"] == "2"
    assert c.get("/recommend/3", params={"model": "bpr", "k": 5}).json()["items"] == m2.recommend([3], k=5)[0][0].tolist()
    assert 'tastebud_model_load_failures_total 2' in c.get("/metrics").text
    shutil.rmtree(models / "bpr")
    reg.refresh()
    assert [m["name"] for m in c.get("/models").json()["models"]] == ["als"]
    assert c.get("/recommend/3", params={"model": "bpr"}).status_code == 404


def test_a_single_model_file_and_a_fitted_model_still_serve(folder):
    models, _ = folder
    c = TestClient(create_app(str(models / "als.tb")))
    assert c.get("/models").json()["models"][0]["name"] == "als"
    assert c.get("/recommend/4").status_code == 200
    assert c.post("/events", json={"user": 1, "item": 2}).status_code == 404  # no event log for one file by default


def test_event_store_group_commits_and_reopens(tmp_path):
    import sqlite3
    import threading

    from tastebud.serving.events import Event, EventStore

    store = EventStore(tmp_path / "ev.db")
    ids: list = []

    def post(w):
        for j in range(25):
            ids.extend(store.append([Event(f"u{w}", j, 1.0 + j)]))

    threads = [threading.Thread(target=post, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(ids) == list(range(1, 201))
    assert store.n_commits < 200  # concurrent requests shared commits
    assert [i for i, *_ in store.history("u3")] == list(range(25))
    store.close()
    conn = sqlite3.connect(tmp_path / "ev.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 200
    conn.close()
    again = EventStore(tmp_path / "ev.db")
    assert again.n_events == 200 and [w for _, w, _ in again.history("u3")] == [1.0 + j for j in range(25)]
    assert again.history(42) == [] and not again.has_user("nobody")
    again.close()
