"""Spec: the web view at /stowage/ui/ is served as static files without a
token, and, in a real browser with an administrator's token, shows the
cloud of ``conftest``: providers found by search, a tree with its usage
bars, traits and aggregates, a consumer's allocations, the capacity
overview fullest first, and a query's explanation as a funnel.

Each browser test leaves a screenshot among the artifacts (``conftest``).
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.clients.served import ADMIN_TOKEN
from tests.contract import ContractBroken, check_answer

WAIT_SECONDS = 15
PAGE = "/stowage/ui/"


# --- The files, over HTTP ----------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        (PAGE, "text/html; charset=utf-8"),
        (PAGE + "app.js", "text/javascript; charset=utf-8"),
        (PAGE + "style.css", "text/css; charset=utf-8"),
    ],
)
def test_the_page_and_its_files_are_served_without_a_token(api, path, content_type):
    status, headers, body = api.call("GET", path, token=None, accept="*/*")
    assert status == 200
    assert headers["content-type"] == content_type
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-cache"
    assert headers["openstack-api-version"] == "placement 1.39"
    assert int(headers["content-length"]) == len(body) > 0


@pytest.mark.parametrize("path", [PAGE, PAGE + "app.js", PAGE + "style.css"])
def test_the_files_are_answers_the_description_allows(api, path):
    status, headers, body = api.call("GET", path, token=None, accept="*/*")
    check_answer("GET", path, status, headers, body)
    # ... which a JSON body would break.
    with pytest.raises(ContractBroken, match="is JSON, not text"):
        check_answer("GET", path, status, {**headers, "content-type": "application/json"}, b"{}")


def test_the_page_names_its_files_by_digest_and_those_are_cached_for_good(api):
    _status, headers, page = api.call("GET", PAGE, token=None, accept="text/html")
    assert "default-src 'self'" in headers["content-security-policy"]
    digests = set(re.findall(rb'(?:app\.js|style\.css)\?v=([0-9a-f]{16})"', page))
    assert len(digests) == 1, page
    digest = digests.pop().decode()
    status, headers, _body = api.call("GET", f"{PAGE}app.js?v={digest}", token=None, accept="*/*")
    assert status == 200
    assert headers["cache-control"] == "public, max-age=31536000, immutable"
    # Another digest (a previous release's page) is revalidated.
    _status, headers, _body = api.call("GET", f"{PAGE}app.js?v=0000", token=None, accept="*/*")
    assert headers["cache-control"] == "no-cache"


def test_an_unknown_file_is_placements_json_404(api):
    status, headers, body = api.call("GET", PAGE + "missing.js")
    assert status == 404
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["errors"][0]["status"] == 404
    # Without a token it is any other path's 401: only the three files are public.
    assert api.call("GET", PAGE + "missing.js", token=None)[0] == 401


# --- In the browser ------------------------------------------------------------


def wait_for(browser: WebDriver, condition, message: str):
    return WebDriverWait(browser, WAIT_SECONDS).until(lambda driver: condition(driver), message)


def loaded(browser: WebDriver, element_id: str) -> WebElement:
    """The element once the page's script has marked it loaded."""
    return wait_for(
        browser,
        lambda driver: driver.find_element(By.CSS_SELECTOR, f"#{element_id}[data-loaded]"),
        f"#{element_id} never loaded; status: {status_line(browser)}",
    )


def status_line(browser: WebDriver) -> str:
    return browser.find_element(By.ID, "status").text


def log_in(browser: WebDriver, token: str) -> None:
    field = wait_for(browser, lambda driver: driver.find_element(By.ID, "token"), "no token field")
    assert field.is_displayed()
    field.send_keys(token)
    browser.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()


@pytest.fixture
def view(browser, served, cloud, artifacts, request) -> Iterator[WebDriver]:
    """The page, logged in as the administrator; screenshot afterwards."""
    browser.get(served.endpoint + PAGE)
    if not browser.execute_script("return sessionStorage.getItem('stowage.token')"):
        log_in(browser, ADMIN_TOKEN)
    loaded(browser, "providers")
    loaded(browser, "capacity")
    yield browser
    browser.save_screenshot(str(artifacts / f"{request.node.name}.png"))


def test_the_page_asks_for_a_token_before_showing_anything(browser, served, cloud, artifacts):
    browser.get(served.endpoint + PAGE)
    browser.execute_script("sessionStorage.clear()")
    browser.refresh()
    wait_for(browser, lambda driver: driver.find_element(By.ID, "login").is_displayed(), "no login")
    assert not browser.find_element(By.ID, "view").is_displayed()
    browser.save_screenshot(str(artifacts / "login.png"))
    log_in(browser, ADMIN_TOKEN)
    assert "compute-1" in loaded(browser, "providers").text
    assert browser.execute_script("return sessionStorage.getItem('stowage.token')") == ADMIN_TOKEN


def test_a_token_that_is_not_an_administrators_is_told_so(browser, served, cloud):
    browser.get(served.endpoint + PAGE)
    browser.execute_script("sessionStorage.setItem('stowage.token', 'someone')")
    try:
        browser.refresh()
        wait_for(browser, lambda driver: "administrator" in status_line(driver), "no refusal shown")
        assert "403" in status_line(browser)
    finally:
        browser.execute_script("sessionStorage.clear()")


def search(view: WebDriver, text: str) -> list[str]:
    field = view.find_element(By.ID, "search-text")
    field.clear()
    field.send_keys(text)
    results = view.find_elements(By.CSS_SELECTOR, "#search-results li[data-provider] button")
    return [result.text for result in results]


def test_search_lists_providers_by_name_or_uuid(view, cloud):
    assert search(view, "compute") == ["compute-1", "compute-1-numa0", "compute-2", "compute-2-numa0"]
    assert search(view, "NUMA") == ["compute-1-numa0", "compute-2-numa0"]
    assert search(view, cloud.providers["compute-2"]) == ["compute-2"]
    assert search(view, "nothing-like-this") == []


def show_tree(view: WebDriver, name: str) -> WebElement:
    search(view, name)
    view.find_element(By.CSS_SELECTOR, "#search-results li[data-provider] button").click()
    tree = loaded(view, "tree")
    # The provider's consumers come next.
    loaded(view, "provider-allocations")
    return tree


def card(view: WebDriver, uuid: str) -> WebElement:
    return view.find_element(By.CSS_SELECTOR, f"#tree-body article[data-provider='{uuid}']")


def test_a_tree_shows_usage_bars_traits_and_aggregates(view, cloud):
    show_tree(view, "compute-2-numa0")
    root, child = card(view, cloud.providers["compute-2"]), card(view, cloud.providers["compute-2-numa0"])
    # The child's card sits inside the root's list item, and is the one picked.
    assert "selected" in child.get_attribute("class")
    assert root.find_element(By.XPATH, "..").find_elements(
        By.CSS_SELECTOR, f"article[data-provider='{cloud.providers['compute-2-numa0']}']"
    )
    usages = [row.text for row in child.find_elements(By.CSS_SELECTOR, ".usage .usage-label")]
    # Capacity is (total - reserved) * allocation_ratio: (10 - 2) * 2.0.
    assert usages == ["MEMORY_MB 2,048 / 16,384", "VCPU 4 / 16"]
    assert root.find_element(By.CSS_SELECTOR, ".usage .usage-label").text == "DISK_GB 90 / 100"
    assert root.find_element(By.CSS_SELECTOR, ".usage .percent").text == "90%"
    assert "nearly-full" in root.find_element(By.CSS_SELECTOR, ".usage .bar").get_attribute("class")
    assert [chip.text for chip in child.find_elements(By.CSS_SELECTOR, ".traits .chip")] == ["HW_NUMA_ROOT"]
    assert [chip.text for chip in root.find_elements(By.CSS_SELECTOR, ".aggregates .chip")] == [
        "5b0c8f2e-9d7a-4c61-8e3b-2a4f6d1c9e70"
    ]
    # Another tree: its traits, its own (not compute-2's) child.
    show_tree(view, "compute-1")
    numa = card(view, cloud.providers["compute-1-numa0"])
    assert [chip.text for chip in numa.find_elements(By.CSS_SELECTOR, ".traits .chip")] == [
        "HW_CPU_X86_AVX2", "HW_NUMA_ROOT"
    ]
    assert "VCPU 4 / 32" in numa.text
    assert not view.find_elements(By.CSS_SELECTOR, f"article[data-provider='{cloud.providers['compute-2']}']")


def test_a_providers_consumers_and_a_consumers_allocations_are_shown(view, cloud):
    show_tree(view, "compute-1-numa0")
    consumers = loaded(view, "provider-allocations")
    instance = cloud.consumers["instance-1"]
    row = consumers.find_element(By.CSS_SELECTOR, f"tr[data-consumer='{instance}']")
    assert row.text == f"{instance} MEMORY_MB 4,096, VCPU 4"
    row.find_element(By.CSS_SELECTOR, "button").click()
    allocations = loaded(view, "consumer-allocations")
    rows = [row.text for row in allocations.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert rows == ["compute-1 DISK_GB 20", "compute-1-numa0 MEMORY_MB 4,096, VCPU 4"]
    assert "type INSTANCE" in allocations.text
    # Looked up by uuid, too.
    field = view.find_element(By.ID, "consumer-text")
    field.clear()
    field.send_keys(cloud.consumers["instance-2"])
    view.find_element(By.CSS_SELECTOR, "#consumer-search button").click()
    wait_for(view, lambda driver: "compute-2 DISK_GB 90" in driver.find_element(By.ID, "consumer-allocations").text,
             "instance-2's allocations not shown")


def test_the_capacity_overview_lists_the_nearly_full_class_first(view, cloud):
    overview = view.find_element(By.ID, "capacity-body")
    rows = overview.find_elements(By.CSS_SELECTOR, "table.by-host tbody tr")
    first = rows[0]
    assert (first.get_attribute("data-class"), first.get_attribute("data-provider")) == (
        "DISK_GB", cloud.providers["compute-2"]
    )
    assert "nearly-full" in first.get_attribute("class")
    cells = [cell.text for cell in first.find_elements(By.CSS_SELECTOR, "th, td")]
    assert cells == ["DISK_GB", "compute-2", "90", "100", "90%"]
    # Every (root, class) once, fullest first.
    assert len(rows) == 6
    percents = [int(row.find_element(By.CSS_SELECTOR, ".percent").text.rstrip("%")) for row in rows]
    assert percents == sorted(percents, reverse=True)
    classes = overview.find_elements(By.CSS_SELECTOR, "table.by-class tbody tr")
    assert classes[0].get_attribute("data-class") == "DISK_GB"
    assert "110 / 1,100" in classes[0].text


def explain(view: WebDriver, query: str) -> WebElement:
    field = view.find_element(By.ID, "explain-query")
    field.clear()
    field.send_keys(query)
    view.find_element(By.CSS_SELECTOR, "#explain-form button").click()
    section = loaded(view, "explain")
    view.execute_script("arguments[0].scrollIntoView()", section)
    return section


FUNNEL_QUERY = "resources=DISK_GB:50&required=STORAGE_DISK_SSD"


def test_a_query_is_explained_as_a_funnel(view, cloud, api, artifacts):
    answer = api.json("GET", f"/stowage/allocation_candidates/explain?{FUNNEL_QUERY}")
    section = explain(view, FUNNEL_QUERY)
    view.save_screenshot(str(artifacts / "funnel.png"))
    assert section.find_element(By.CSS_SELECTOR, ".summary").text == answer["summary"]
    stages = section.find_elements(By.CSS_SELECTOR, ".funnel .stage")
    expected = [stage for group in answer["groups"] for stage in group["stages"]]
    assert [stage.get_attribute("data-stage") for stage in stages] == [stage["stage"] for stage in expected]
    for shown, stage in zip(stages, expected, strict=True):
        assert shown.find_element(By.CSS_SELECTOR, ".stage-count").text.startswith(f"kept {stage['kept']}")
    assert any(stage.find_elements(By.CSS_SELECTOR, ".reasons li") for stage in stages)
    # Each tree ruled out once, under its first reason, as the answer says.
    shown = section.find_elements(By.CSS_SELECTOR, ".tree-reason .reason-text")
    assert [reason.text for reason in shown] == [
        reason["text"] for reason in answer["excluded_trees"]["reasons"]
    ]
    assert shown, "the funnel's query rules trees out"
    # A query the API refuses is shown as its error.
    assert "Could not load: 400" in explain(view, "resources=VCPU:x").text


def test_the_whole_picture_fits_one_screenshot(view, cloud, artifacts):
    """The screenshot of docs/web-view.png: a tree, a consumer and a funnel at once."""
    show_tree(view, "compute-2")
    view.find_element(By.CSS_SELECTOR, f"button[data-consumer='{cloud.consumers['instance-2']}']").click()
    loaded(view, "consumer-allocations")
    explain(view, FUNNEL_QUERY)
    search(view, "compute")
    width, window_height = view.get_window_size()["width"], view.get_window_size()["height"]
    try:
        # Tall enough for the whole page: grow until nothing is left to scroll.
        for _ in range(3):
            missing = view.execute_script(
                "return document.documentElement.scrollHeight - window.innerHeight"
            )
            if missing <= 0:
                break
            view.set_window_size(width, view.get_window_size()["height"] + missing)
        view.execute_script("window.scrollTo(0, 0)")
        view.save_screenshot(str(artifacts / "web-view.png"))
    finally:
        view.set_window_size(width, window_height)
