"""The HTML report in a real browser: headless Chromium, driven through selenium and chromedriver.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``test`` extra (selenium).
Without them the test says what is missing and skips; with ``IPC_REQUIRE_BROWSER=1``
(CI) it fails instead.  tox runs it in py311 only (marker ``browser``): the page is
the same string on every interpreter, the other envs check it without a browser
(test_reports.py), and current selenium needs Python 3.10+.  Its screenshots go to
``$IPC_ARTIFACTS`` (``.ci/run`` sets it to ``.ci/logs/``), else to the test's tmp_path.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest

from ipc_conformance import report

from .report_sample import BAD, REPRODUCE_FAIL, sample_collector

pytestmark = pytest.mark.browser

#: A browser on a machine without network, starting in well under a second and fetching nothing.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1200,900")


def _missing(what: str) -> None:
    if os.environ.get("IPC_REQUIRE_BROWSER") == "1":
        pytest.fail(f"IPC_REQUIRE_BROWSER=1 but {what}")
    pytest.skip(f"no browser to check the HTML report in: {what}")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed (pip install 'ipc-conformance[test]')")
    chromium = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
    driver = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver")
                                              else None)
    if chromium is None or driver is None:
        _missing("Debian's chromium and chromium-driver are not installed (apt-get install chromium "
                 "chromium-driver)")
    options = Options()
    options.binary_location = str(chromium)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")  # fresh: nothing from other runs
    # A service path given: selenium does not run Selenium Manager, which would try to download.
    drv = webdriver.Chrome(service=Service(executable_path=str(driver), log_output=str(tmp_path / "driver.log")),
                           options=options)
    try:
        yield drv
    finally:
        drv.quit()


def artifacts(tmp_path: Path) -> Path:
    """Where screenshots go: ``$IPC_ARTIFACTS`` (CI sets it to .ci/logs/, which outlives the run),
    else the test's own temporary directory."""
    where = os.environ.get("IPC_ARTIFACTS")
    if not where:
        return tmp_path
    path = Path(where)
    path.mkdir(parents=True, exist_ok=True)
    return path


def screenshot(browser: Any, path: Path) -> Path:
    """The whole page (the window grown to its height), saved to ``path``; the path is printed
    so that ``-rA`` and CI's log say where to look."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1200, min(int(height) + 120, 6000))
    browser.save_screenshot(str(path))
    print(f"screenshot of the HTML report: {path}")
    return path


def test_the_html_report_reads_and_opens_in_a_real_browser(browser: Any, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    report.write(sample_collector(), [str(page)])
    browser.get(page.as_uri())
    shots = artifacts(tmp_path)
    # One shot as rendered, one at the end whatever happened: a failing assert still leaves both.
    first = screenshot(browser, shots / "browser-report-rendered.png")
    try:
        _check_the_page(browser)
    finally:
        try:
            screenshot(browser, shots / "browser-report-final.png")
        except Exception as exc:  # the browser died: the test's own failure says more
            print(f"no final screenshot: {type(exc).__name__}: {exc}")
    assert first.stat().st_size > 10_000


def _check_the_page(browser: Any) -> None:
    from selenium.webdriver.common.by import By

    assert browser.title == "IPC conformance: FAILED"  # the <script> in a failure message did not run
    assert browser.find_element(By.ID, "status").text == "FAILED"
    row = browser.find_element(By.CSS_SELECTOR, "#family-stream table.matrix tbody tr")
    assert row.is_displayed()
    marks = {cls: [c.text.split("\n")[0] for c in browser.find_elements(By.CSS_SELECTOR, f".matrix td.v-{cls}")
                   if c.is_displayed()]
             for cls in ("fail", "flaky", "error", "crashed", "unsupported", "unresolved", "not_run", "pass")}
    assert marks["fail"] == ["FAIL"] and marks["flaky"] == ["FLAKY"] and marks["error"] == ["ERROR"]
    assert marks["crashed"] == ["CRASH"] and marks["unresolved"] == ["unres"] and marks["not_run"] == ["--"]
    assert "n/a" in marks["unsupported"] and len(marks["pass"]) >= 8
    # Greyscale keeps the order: the worse the verdict, the darker its cell (luminance of the background).
    shades = [_luminance(browser, f".matrix td.v-{v}") for v in ("crashed", "error", "fail", "flaky", "pass",
                                                                 "unsupported")]
    assert shades == sorted(shades) and shades[2] < 100 < shades[3] < 200 < shades[4], shades

    failure = browser.find_elements(By.CSS_SELECTOR, "details.failure")[0]
    repro = failure.find_element(By.CSS_SELECTOR, "pre.reproduce")
    assert not repro.is_displayed() and BAD in failure.find_element(By.TAG_NAME, "summary").text
    failure.find_element(By.TAG_NAME, "summary").click()  # a click opens it, no script needed
    assert repro.is_displayed() and repro.text == REPRODUCE_FAIL
    assert "Failing test case: example(" in failure.text and "history (ms since example start" in failure.text

    flaky = browser.find_element(By.CSS_SELECTOR, ".matrix td.v-flaky a")
    target = browser.find_element(By.ID, flaky.get_attribute("href").split("#", 1)[1])
    assert target.get_attribute("open") is None
    flaky.click()  # a failing cell's link leads to its details, opened
    assert target.get_attribute("open") is not None and target.find_element(By.CSS_SELECTOR, "pre.reproduce").text


def _luminance(browser: Any, selector: str) -> float:
    rgb = browser.execute_script(
        "return getComputedStyle(document.querySelector(arguments[0])).backgroundColor", selector)
    r, g, b = (int(x) for x in rgb[rgb.index("(") + 1: rgb.index(")")].split(",")[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b
