"""The service's page in a real headless browser: Debian's chromium (/usr/bin/chromium, installed
by `make test`) driven by Playwright, against a real `tastebud serve` process. Load the page,
search titles, add items to a history, see recommendations with titles and reasons change, see
similar items and basket rules, switch models. Saves test-artifacts/serve-page.png.
The browser is the session fixture ``browser`` of conftest.py (one per test run)."""

from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (make test installs it)")

from serving_helpers import Server  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(scope="module")
def server(served_root, tmp_path_factory):
    logs = tmp_path_factory.mktemp("page")
    with Server(served_root / "models", "--items", str(served_root / "items.csv"), "--events", str(logs / "ev.db"),
                log=logs / "log") as s:
        yield s


def _titles(page, sel: str) -> list[str]:
    return page.locator(f"{sel} li .title").all_inner_texts()


def test_page_search_history_recommendations_rules_similar(browser, server):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-ready='1']")
    options = page.locator("#model option").all_inner_texts()
    assert any(o.startswith("als ") for o in options) and any(o.startswith("rules ") for o in options)

    # search titles, add two Space items: recommendations are Space stories, with reasons
    page.fill("#search", "space story 1")
    page.wait_for_selector("#search-results li button")
    page.locator("#search-results li", has_text="Space Story 1").first.locator("button").click()
    page.wait_for_selector("#recs li")
    page.fill("#search", "space story 2")
    page.wait_for_selector("#search-results li:has-text('Space Story 2') button")
    page.locator("#search-results li", has_text="Space Story 2").first.locator("button").click()
    page.wait_for_function("document.querySelectorAll('#history li').length === 2")
    page.wait_for_selector("#recs[data-for='history:2:als'] li .reason")
    first = _titles(page, "#recs")
    assert len(first) == 10 and sum(t.startswith("Space") for t in first) >= 8, first
    assert "because of" in page.locator("#recs li .reason").first.inner_text()
    page.wait_for_selector("#rules[data-for='history:2:als'] li")
    assert page.locator("#rules li").count() >= 1

    # add three Garden items: the recommendations change towards Garden
    for j in (3, 4, 5):
        page.fill("#search", f"garden story {j}")
        page.wait_for_selector(f"#search-results li:has-text('Garden Story {j}') button")
        page.locator("#search-results li", has_text=f"Garden Story {j}").first.locator("button").click()
    page.wait_for_function("document.querySelectorAll('#history li').length === 5")
    page.wait_for_selector("#recs[data-for='history:5:als'] li")
    second = _titles(page, "#recs")
    assert second != first and sum(t.startswith("Garden") for t in second) >= 3

    # similar items of a recommended item
    page.locator("#recs li .title").first.click()
    page.wait_for_selector("#similar[data-for^='similar:'] li")
    assert page.locator("#similar li").count() == 8

    # a known user; then switch models
    page.fill("#user", "4")
    page.click("#user-form button")
    page.wait_for_selector("#recs[data-for='user:4:als'] li")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "serve-page.png"), full_page=True)
    als_recs = _titles(page, "#recs")
    page.select_option("#model", "bpr")
    page.wait_for_selector("#recs[data-for='user:4:bpr'] li")
    assert len(_titles(page, "#recs")) == 10 and page.locator("#status").inner_text().startswith("bpr")
    assert als_recs
    assert not errors, errors
    page.close()
