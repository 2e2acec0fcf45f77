"""``llmos ui`` in a real headless Chromium (Debian's chromium and chromium-driver, driven
by Selenium; nothing is downloaded): the pages load, a run started while the page is open
appears without a reload, and every request needs the token."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.cli

LLMOS = str(Path(sys.executable).parent / "llmos")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WAIT_S = 60  # an upper bound for the browser to catch up, not a performance claim


@pytest.fixture
def llmos_settings():
    return ["budget.run_cap_usd=0.5"]


@pytest.fixture
def dashboard(llmos_workspace, llmos_cli, llmos_model_server):
    """A workspace with one learned run, and ``llmos ui`` serving it; yields its URL."""
    assert llmos_cli("budget", "set", "5").exit_code == 0
    llmos_model_server.script.tool_use(
        "Write", {"file_path": str(llmos_workspace / "a.txt"), "content": "a\n"}
    ).text("Wrote a.txt.")
    assert llmos_cli("run", "--json", "Write a.txt saying a").exit_code == 0
    proc = subprocess.Popen([LLMOS, "-w", str(llmos_workspace), "ui", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "?token=" in line, line + proc.stderr.read()
        yield line.split()[-1]
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture
def browser():
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install -y "
                    "chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    # a driver path given: Selenium Manager is never run, so nothing is downloaded
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_every_request_needs_the_token(dashboard):
    base, token = dashboard.split("/?token=")
    for path in ("/", "/traces", "/charts", "/policy", "/api/runs", "/api/series", "/events",
                 "/static/chart.umd.min.js", "/runs/x"):
        assert httpx.get(base + path).status_code == 401, path
        assert httpx.get(f"{base}{path}?token=wrong{token}").status_code == 403, path
    page = httpx.get(dashboard)
    assert page.status_code == 200
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"  # the URL holds the token
    assert httpx.get(base + "/").headers["x-frame-options"] == "DENY"
    # a page elsewhere cannot reach it under another host name (DNS rebinding)
    assert httpx.get(dashboard, headers={"Host": "attacker.example"}).status_code == 400
    # read-only: nothing but GET
    assert httpx.post(f"{base}/api/runs?token={token}").status_code == 405


def test_the_pages_load_and_a_new_run_appears_live(dashboard, browser, llmos_workspace,
                                                   llmos_model_server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    base = dashboard.split("/?token=")[0]
    browser.get(base + "/")
    assert "needs its access token" in browser.find_element(By.TAG_NAME, "body").text

    browser.get(dashboard)
    rows = browser.find_elements(By.CSS_SELECTOR, "#runs tbody tr[data-run]")
    assert [r.find_element(By.CSS_SELECTOR, "td.goal").text for r in rows] == [
        "Write a.txt saying a"]
    assert "LEARNER" in rows[0].text and "succeeded" in rows[0].text
    WebDriverWait(browser, WAIT_S).until(
        lambda d: "live" in d.find_element(By.ID, "live-status").text)

    # a run started now, in another process, shows up on the open page
    llmos_model_server.script.tool_use("Bash", {"command": "cat a.txt"}).text("It says a.")
    env = {**os.environ}
    done = subprocess.run([LLMOS, "-w", str(llmos_workspace), "--set",
                           "budget.run_cap_usd=0.5", "run", "--json", "Show what a.txt says"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    def new_row(d):
        # live updates may redraw the row between finding it and reading it: read it whole
        try:
            row = d.find_element(By.CSS_SELECTOR, f'#runs tr[data-run="{run_id}"]')
            return row.text, row.find_element(By.CSS_SELECTOR, "a").get_attribute("href")
        except (StaleElementReferenceException, NoSuchElementException):
            return False

    text, href = WebDriverWait(browser, WAIT_S).until(new_row)
    assert "Show what a.txt says" in text

    # the other pages, through the run's link and the nav (the cookie carries the token)
    browser.get(href)
    assert browser.find_element(By.TAG_NAME, "h1").text == f"Run {run_id}"
    assert "Bash" in browser.find_element(By.TAG_NAME, "main").text
    assert "allow" in browser.find_element(By.CSS_SELECTOR, "table.decisions").text
    browser.find_element(By.LINK_TEXT, "Traces").click()
    traces = browser.find_elements(By.CSS_SELECTOR, "#traces tbody tr")
    assert any("Write a.txt saying a" in t.text for t in traces)
    traces[0].find_element(By.CSS_SELECTOR, "a").click()
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("Trace ")
    assert "verified" in browser.find_element(By.CSS_SELECTOR, "dl.facts").text
    browser.find_element(By.LINK_TEXT, "Policy decisions").click()
    assert "Write" in browser.find_element(By.CSS_SELECTOR, "table.decisions").text
    browser.find_element(By.LINK_TEXT, "Budget & savings").click()
    WebDriverWait(browser, WAIT_S).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-charts-ready")
        not in (None, "", "0"))
    drawn = browser.execute_script(
        "return ['budget-chart','savings-chart','hitrate-chart'].map("
        "id => Chart.getChart(id).data.datasets[0].data.length)")
    assert drawn[0] >= 2 and drawn[1] == drawn[2] == 2  # two runs; reserve/commit entries
