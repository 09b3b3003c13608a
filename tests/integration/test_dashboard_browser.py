"""The live dashboard in a real headless Chromium (the OS's, driven by Selenium), on a real
broker: two instances of the order-totals example; instance A's page shows both instances'
tasks, the records processed as they grow, the lag falling to zero, the topology and a
dead-lettered record with its reason.

``make browser`` installs Chromium and its driver. DASHBOARD_SCREENSHOT=docs/images/
dashboard.png keeps the page's screenshot there (the docs' picture comes from this test).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from examples.dashboard.app import build
from tests.integration.kafka_helpers import KafkaTestBroker

from fluvial.runtime.app import App
from fluvial.server import AppServer

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
TOKEN = "dashb0ard"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1400"]
READ_PAGE = """
const all = s => [...document.querySelectorAll(s)];
const figures = {};
for (const id of ["total-processed", "total-lag", "total-skipped", "instance-count",
                  "viewed-from", "status"])
  figures[id] = document.getElementById(id).textContent;
return {
  figures,
  tasks: all(".instance .task").map(t => [t.closest(".instance").dataset.instance,
                                          t.dataset.task, t.dataset.state]),
  errors: all("#errors tbody tr").map(r => [r.dataset.kind, r.innerText]),
  nodes: all("#topology g.node").map(g => g.dataset.node),
  lines: all("#throughput-chart polyline").length,
  stores: all("#stores tbody tr").map(r => r.innerText),
};
"""


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    if importlib.util.find_spec("selenium") is None:
        pytest.fail("selenium missing: pip install -e '.[dev]' (make test installs it)",
                    pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if missing:
        pytest.fail(f"{' and '.join(missing)} missing: `make browser` installs Chromium and "
                    f"its driver from the OS packages", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'chromium'}"]:
        options.add_argument(flag)
    # the driver named outright: Selenium Manager never goes looking on the network
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def orders(first: int, n: int) -> list[tuple[str, str]]:
    return [(f"customer{i % 12}", json.dumps({"amount": i})) for i in range(first, first + n)]


def test_the_dashboard_shows_the_application_live(
        kafka: KafkaTestBroker, tmp_path: Path, browser: WebDriver) -> None:
    run = uuid.uuid4().hex[:6]  # short names: they show in the docs' screenshot
    source, sink, app_id = f"orders-{run}", f"order-totals-{run}", f"shop-{run}"
    kafka.create_topic(source, partitions=4)
    kafka.create_topic(sink, partitions=4)
    apps: list[App] = []
    servers: list[AppServer] = []
    try:
        for name in ("a", "b"):
            app = App(build(source, sink), app_id, state_dir=tmp_path / name,
                      bootstrap_servers=kafka.bootstrap_servers, commit_interval_ms=200,
                      on_error="dead_letter")
            servers.append(AppServer(app, port=0, token=TOKEN).start())
            apps.append(app.start())
        a, b = (f"127.0.0.1:{s.port}" for s in servers)
        browser.get(f"http://{a}/dashboard#token={TOKEN}")
        from selenium.webdriver.support.ui import WebDriverWait

        wait = WebDriverWait(browser, 45, poll_frequency=0.2)

        def page() -> dict[str, Any]:
            """What the page shows now, read in one go (it redraws every second)."""
            return dict(browser.execute_script(READ_PAGE))

        def tasks_on(instance: str) -> set[str]:
            return {task for where, task, state in page()["tasks"]
                    if where == instance and state == "running"}

        # both instances' tasks, on instance A's page
        wait.until(lambda _: tasks_on(a) and tasks_on(b)
                   and tasks_on(a) | tasks_on(b) == {"0_0", "0_1", "0_2", "0_3"})
        assert not tasks_on(a) & tasks_on(b)
        kafka.produce(source, [*orders(0, 400), ("customer3", '{"amount": "lots"}')])
        wait.until(lambda _: page()["figures"]["total-processed"] == "401")
        shown = page()
        assert shown["figures"]["instance-count"] == "2"
        assert shown["figures"]["viewed-from"] == a
        # the dead letter, with its reason and where it came from
        wait.until(lambda _: page()["errors"])
        [(kind, row)] = page()["errors"]
        assert kind == "dead_letter"
        assert "order without a whole-number amount: {'amount': 'lots'}" in row
        assert source in row and page()["figures"]["total-skipped"] == "1"
        # live: more records, the total follows; the lag is read and falls to zero
        kafka.produce(source, orders(400, 300))
        wait.until(lambda _: page()["figures"]["total-processed"] == "701")
        wait.until(lambda _: page()["figures"]["total-lag"] == "0")
        # the topology, the charts and the store sizes drawn from the same data
        shown = page()
        assert {f"topic:{source}", f"topic:{sink}", "store:totals"} <= set(shown["nodes"])
        wait.until(lambda _: page()["lines"] == 4)
        wait.until(lambda _: {r.split()[1] for r in page()["stores"]}
                   == {"0_0", "0_1", "0_2", "0_3"})
        assert page()["figures"]["status"] == ""
        browser.save_screenshot(str(tmp_path / "dashboard.png"))
        keep = os.environ.get("DASHBOARD_SCREENSHOT")
        if keep:
            shutil.copyfile(tmp_path / "dashboard.png", keep)
    finally:
        for app, server in zip(apps, servers, strict=False):
            app.close()
            server.stop()
    assert [app.error for app in apps] == [None, None]
