"""The service desk's pages in a real browser: Debian's chromium (install.sh installs it) driven
by Playwright, against ``cdi serve``'s app on the three-run story's lake. Screenshots of each
page are kept in ``test-artifacts/service/`` for a person to look at."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from cdi.config import CdiConfig, ServiceConfig
from cdi.service.app import create_app
from cdi.config import ServiceRole
from gold_fixtures import story  # noqa: F401  (fixture)
from service_fixtures import STEWARD_TOKEN, steward_lake  # noqa: F401  (fixture)

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "service"


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("no chromium on PATH: run `bash install.sh` (it installs Debian's chromium for these tests)")
    return found


@pytest.fixture(scope="module")
def served(steward_lake):
    """The app on a free local port, in a thread of this process."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    roles = [ServiceRole(name="steward", token=STEWARD_TOKEN, steward=True, unmasked=True)]
    cfg = CdiConfig(lake_root=str(steward_lake), service=ServiceConfig(refresh_seconds=0, roles=roles, review_upper=0.99))
    server = uvicorn.Server(uvicorn.Config(create_app(cfg), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


def test_search_then_the_customer_page_then_a_retired_id_leads_to_its_successor(served, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1366, "height": 800})
    page.goto(served + "/")
    assert page.locator("h1").inner_text() == "Find a customer"

    page.fill("input[name=q]", "Bob Rai")  # a typo of Bob Ray
    page.click("button[type=submit]")
    page.wait_for_selector("#results")
    page.screenshot(path=str(ARTIFACTS / "search.png"), full_page=True)
    first = page.locator("#results tbody tr").first
    assert "C3" in first.inner_text() and "name" in first.inner_text()

    first.locator("a").click()
    page.wait_for_selector("#golden")
    page.screenshot(path=str(ARTIFACTS / "customer.png"), full_page=True)
    assert page.locator("#customer-id").inner_text() == "C3"
    headers = page.locator("#golden thead th").all_inner_texts()
    assert headers[3:] == ["crm:2", "crm:3", "pos:3", "shop:3"]  # the sources side by side
    email = page.locator("#golden tbody tr", has_text="email").first
    assert "bob@example.com" in email.inner_text() and "crm:2" in email.inner_text()
    assert page.locator("#golden td.wins").count() > 0  # the winning source value is marked
    timeline = page.locator("#timeline").inner_text()
    assert "bob.ray@shop.example → bob@example.com" in timeline

    page.fill("input[name=q]", "C2")
    page.click("button[type=submit]")
    page.locator("#results a").first.click()
    page.wait_for_selector("#customer-id")
    assert "retired" in page.locator("h1").inner_text()
    page.screenshot(path=str(ARTIFACTS / "retired.png"), full_page=True)
    page.locator("a[href='/customers/C3']").click()
    page.wait_for_selector("#golden")
    assert page.locator("#customer-id").inner_text() == "C3"
    page.close()


def test_a_search_without_hits_says_what_was_tried(served, browser):
    page = browser.new_page()
    page.goto(served + "/?q=nobody%40example.com")
    assert "No customer matches" in page.locator("h1").inner_text()
    assert "e-mail" in page.locator("main").inner_text()
    page.close()


def test_a_steward_signs_in_reviews_a_pair_and_separates_two_customers(served, browser, steward_lake):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1366, "height": 800})
    page.goto(served + "/review")
    assert "steward role" in page.content()  # a viewer is refused

    page.goto(served + "/login")
    page.fill("input[name=token]", STEWARD_TOKEN)
    page.click("main button[type=submit]")
    page.click("text=Review queue")
    page.wait_for_selector("#queue")
    page.screenshot(path=str(ARTIFACTS / "review.png"), full_page=True)
    row = page.locator("#queue tbody tr").first
    assert "crm:6" in row.inner_text() and "shop:6" in row.inner_text() and "0.800" in row.inner_text()
    row.locator("input[name=reason]").fill("one Dana who shops in two places")
    row.locator("button[value=accept]").click()
    page.wait_for_selector(".flash.ok")
    assert "Recorded: link" in page.locator(".flash.ok").inner_text()
    assert page.locator("#queue-empty").is_visible()
    assert "one Dana who shops in two places" in page.locator("#decisions").inner_text()
    page.screenshot(path=str(ARTIFACTS / "review-decided.png"), full_page=True)

    page.goto(served + "/customers/C1")
    page.fill("#pair-form input[name=b]", "C3")
    page.fill("#pair-form input[name=reason]", "different people, same street")
    page.click("#pair-form button[value=separate]")
    page.wait_for_selector(".flash.ok")
    assert "Recorded: separate" in page.locator(".flash.ok").inner_text()
    assert page.locator("#golden").inner_text().count("1980-02-03") >= 1  # the steward sees birth dates in clear
    page.screenshot(path=str(ARTIFACTS / "customer-steward.png"), full_page=True)
    page.close()

    from cdi import schema
    from cdi.service.snapshot import read_table

    decided = read_table(str(steward_lake / schema.STEWARD_DECISIONS)).to_pylist()
    assert {(d["action"], d["review"]) for d in decided} == {("link", "accepted"), ("separate", None)}
    assert all(d["steward"] == "steward" and d["origin"] == "api" for d in decided)
