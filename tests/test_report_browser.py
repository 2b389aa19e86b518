"""The report page as a reader meets it, in Debian's Chromium driven by Selenium through chromium-driver: the summary
and the table of contents in the first screen, every contents link landing on its section, every figure loaded,
nothing fetched from outside, and no error in the console."""

import shutil
from urllib.parse import urlsplit

import pytest

from reid_repro.report.screenshot import FLAGS
from test_report import IN_CI, report  # noqa: F401  (report: the fixture, a report built from known numbers)

WIDTH, HEIGHT = 1400, 900


@pytest.fixture
def browser(tmp_path):
    """Chromium under chromedriver; missing pieces fail in CI (.ci/run installs them) and skip elsewhere."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        chromium = None
    if chromium is None or driver is None:
        if IN_CI:
            pytest.fail("chromium, chromedriver or selenium is missing; .ci/run installs chromium and "
                        "chromium-driver, requirements.lock selenium")
        pytest.skip("Debian's chromium and chromium-driver and the selenium package are not all installed")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={WIDTH},{HEIGHT}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # the driver is named, so Selenium Manager (which would download one) never runs
    with webdriver.Chrome(options=options, service=Service(driver)) as d:
        yield d


def _top(driver, element) -> float:
    """Where an element's top is in the window (pixels from its top edge)."""
    return driver.execute_script("return arguments[0].getBoundingClientRect().top", element)


def test_report_page_in_chromium(report, browser):  # noqa: F811
    from selenium.webdriver.common.by import By

    _, tmp, _ = report
    browser.get((tmp / "reports" / "index.html").as_uri())
    height = browser.execute_script("return window.innerHeight")
    # the summary and the table of contents are in the first screen
    nav = browser.find_element(By.TAG_NAME, "nav")
    assert 0 <= _top(browser, browser.find_element(By.ID, "summary")) < height
    assert _top(browser, nav) == 0 and nav.is_displayed()
    # every figure has loaded
    images = browser.find_elements(By.TAG_NAME, "img")
    broken = [i.get_attribute("src") for i in images
              if not browser.execute_script("return arguments[0].naturalWidth", i)]
    assert images and not broken, broken
    # every contents link lands on its section: at the top of the window, or in view when the page cannot
    # scroll further; the contents stay in view (position: fixed)
    links = nav.find_elements(By.TAG_NAME, "a")
    assert len(links) > 5
    for link in links:
        target = link.get_attribute("hash")[1:]
        link.click()
        assert browser.execute_script("return location.hash") == f"#{target}"
        top = _top(browser, browser.find_element(By.ID, target))
        at_bottom = browser.execute_script(
            "return Math.ceil(window.scrollY + window.innerHeight) >= document.documentElement.scrollHeight")
        assert abs(top) <= 1 or (at_bottom and 0 <= top < height), (target, top)
        assert _top(browser, nav) == 0 and nav.is_displayed()
    # offline: every address on the page is an anchor, a file beside it or inline data
    urls = browser.execute_script("return [...document.querySelectorAll('[src], [href]')]"
                                  ".map(e => e.getAttribute('src') || e.getAttribute('href'))")
    outside = [u for u in urls if urlsplit(u).scheme not in ("", "data") or urlsplit(u).netloc]
    assert urls and not outside, outside
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
