"""The Dagster UI in a real browser: the batch lineage, a batch materialized by clicking,
and its quality checks read where a user reads them.

``dagster dev`` (webserver + daemon) runs on 127.0.0.1 against a fresh instance and a
fresh TDM_HOME (built-in generators, no inference server); headless Debian Chromium,
driven by Playwright, clicks through it. Screenshots: ``test-artifacts/ui/``.
"""

import re
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support.browser import CHROMIUM, Shots, browser_page, chromium
from tests.support.dagster_processes import (
    dagster_env,
    dagster_process,
    free_port,
    graphql,
    instance_folder,
    require_system,
    wait_for,
)

pytest.importorskip("playwright")
from playwright.sync_api import Page, expect  # noqa: E402

expect.set_options(timeout=60_000)  # the UI is slow to render on 2 busy cores

LINEAGE = ["generated_batch", "validated_batch", "quality_report", "queued_batch"]
CHECKS = ["format", "length", "diversity", "balance", "content", "duplicates", "leakage", "batch_metrics"]
RUN_TIMEOUT_MS = 300_000  # a batch takes 20-60 s on 2 cores; the run also has to start


class Dagster:
    def __init__(self, url: str, log: Path) -> None:
        self.url, self.log = url, log


@pytest.fixture
def dagster_dev(tmp_path, home) -> Dagster:
    require_system(CHROMIUM.exists(), "Debian chromium (/usr/bin/chromium)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "dagster-dev.log"
    # nux off: no "Join the Dagster community" dialog popping up over the first page
    env = dagster_env(instance_folder(tmp_path / "dagster-home", "nux:\n  enabled: false\n"))
    with dagster_process(["dagster", "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
                         env=env, log=log, ready_url=url):  # fmt: skip
        yield Dagster(url, log)


@pytest.fixture
def shots() -> Shots:
    return Shots()


def selection_url(base: str, assets: list[str]) -> str:
    """The asset graph filtered to ``assets``, as the UI's own "View in graph" links encode it."""
    query = " or ".join(f'key:"{name}"' for name in assets)
    return f"{base}/asset-groups~{quote(query)}"


def lineage_section(page: Page, heading: str, expected: str) -> set[str]:
    """The assets an asset's Overview lists under ``heading`` ("Upstream assets" or
    "Downstream assets"), once ``expected`` is among them (the list loads after the page)."""
    title = page.get_by_text(heading, exact=True)
    expect(title, f'the asset page shows "{heading}"').to_be_visible()
    section = title.locator("xpath=following-sibling::*[1]")
    listed = section.locator(f'a[href="/assets/{expected}"]')
    expect(listed, f"{page.url} lists {expected} under {heading}").to_be_visible()
    return {link.get_attribute("href").removeprefix("/assets/") for link in section.get_by_role("link").all()}


def test_batch_lineage_in_the_asset_graph(dagster_dev, shots):
    with chromium() as browser, browser_page(browser, shots, logs=(dagster_dev.log,)) as page:
        page.goto(selection_url(dagster_dev.url, LINEAGE))
        page.get_by_role("button", name=re.compile("Materialize all")).wait_for(timeout=120_000)
        page.locator('[aria-label="settings"]').last.click()  # the graph's settings menu
        page.get_by_role("menuitem", name="Expand all groups").click()
        page.keyboard.press("Escape")
        expect(page.get_by_role("menuitem", name="Collapse all groups"), "the settings menu closes").to_be_hidden()
        for name in LINEAGE:
            expect(page.get_by_text(name, exact=True).first, f"{name} in the asset graph").to_be_visible()
        shots.save(page, "01-asset-graph")

        # Each edge as both ends' pages list it: upstream asset -> downstream asset.
        upstreams = {}
        for upstream, downstream in zip(LINEAGE, LINEAGE[1:]):
            page.goto(f"{dagster_dev.url}/assets/{upstream}")
            lineage_section(page, "Downstream assets", downstream)
            page.goto(f"{dagster_dev.url}/assets/{downstream}")
            upstreams[downstream] = lineage_section(page, "Upstream assets", upstream)
        shots.save(page, "02-asset-page-lineage")
        # The description renders as markdown: the path's placeholders must not vanish as HTML tags.
        expect(page.get_by_text("queue/<priority>/<batch>.jsonl").first, "queued_batch's description").to_be_visible()
        assert upstreams == {"validated_batch": {"generated_batch"}, "quality_report": {"validated_batch"},
                             "queued_batch": {"quality_report"}}, upstreams  # fmt: skip


def test_materialize_a_batch_by_clicking_and_read_its_checks(dagster_dev, shots):
    batch = f"syllo_autogen_{datetime.now(timezone.utc):%Y%m%d_%H%M%S}_count24"
    with chromium() as browser, browser_page(browser, shots, logs=(dagster_dev.log,)) as page:
        # The graph of the four batch assets: "Materialize all…" opens the launch dialog.
        page.goto(selection_url(dagster_dev.url, LINEAGE))
        page.get_by_role("button", name=re.compile("Materialize all")).click(timeout=120_000)
        launch = page.get_by_role("dialog").filter(has_text="Launch runs to materialize")
        expect(launch, "the launch dialog for the four batch assets").to_contain_text("materialize 4 assets")

        # A batch is a new dynamic partition of "batches", added from the dialog itself.
        launch.get_by_text("Add a partition", exact=True).click()
        add = page.get_by_role("dialog").filter(has_text="Add a partition for batches")
        add.get_by_role("textbox").fill(batch)
        add.get_by_role("button", name="Save").click()
        expect(add).to_be_hidden()
        expect(launch, "the new partition is selected").to_contain_text("1 partition")
        expect(launch.get_by_text(batch, exact=True).first).to_be_attached()
        shots.save(page, "03-launch-dialog")
        launch.get_by_role("button", name="Launch 1 run").click()

        # The toast links to the run; its page shows the run live until it ends.
        page.get_by_text("Launched run").wait_for()
        page.get_by_role("link", name="View", exact=True).click()
        page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}"))
        run_id = re.search(r"/runs/([0-9a-f-]{36})", page.url).group(1)
        expect(page.get_by_text(f"partition: {batch}", exact=True), "the run's partition tag").to_be_visible()
        status = page.get_by_text(re.compile(r"^(Success|Failure|Canceled)$")).first
        status.wait_for(timeout=RUN_TIMEOUT_MS)
        shots.save(page, "04-run-page")
        assert status.inner_text() == "Success", f"run {run_id} of batch {batch} ended {status.inner_text()}"
        run = graphql(dagster_dev.url, '{ runOrError(runId: "%s") { ... on Run { status } } }' % run_id)
        assert run["runOrError"]["status"] == "SUCCESS", run

        # quality_report's Checks tab: the format suite passed, in this run, with its pass rate.
        page.goto(f"{dagster_dev.url}/assets/quality_report")
        page.get_by_role("tab", name="Checks").click()
        expect(page.get_by_text(re.compile(r"^Checks \(\d+\)$")), "the Checks tab").to_be_visible()
        for name in CHECKS:
            expect(page.get_by_title(name, exact=True), f"check {name} is listed").to_be_visible()
        page.get_by_title("format", exact=True).click()
        result = page.get_by_text("Evaluation result", exact=True).locator("xpath=..")
        expect(result, "format's latest evaluation").to_contain_text("Passed")
        timestamp = page.get_by_text("Timestamp", exact=True).locator("xpath=..").get_by_role("link")
        expect(timestamp, "format's latest evaluation links to the run").to_have_attribute("href", re.compile(run_id))
        partition = page.get_by_text("Partition", exact=True).locator("xpath=..")
        expect(partition, "the evaluation names its batch (checks are partitioned)").to_contain_text(batch)
        pass_rate = page.get_by_role("row").filter(has=page.get_by_role("cell", name="pass_rate", exact=True))
        expect(pass_rate.first).to_be_visible()
        rate = float(pass_rate.first.get_by_role("cell").nth(1).inner_text())
        assert rate >= 0.95, f"format's pass_rate is {rate}"
        shots.save(page, "05-checks-tab")


def materializations(url: str, asset: str) -> int:
    data = graphql(url, '{ assetOrError(assetKey: {path: ["%s"]}) { ... on Asset { assetMaterializations(limit: 20) { runId } } } }' % asset)
    return len(data["assetOrError"].get("assetMaterializations") or [])


def test_stats_are_plotted_in_the_ui(dagster_dev, shots):
    """data_stats materialized twice from its page; its Metadata section plots each number."""
    with chromium() as browser, browser_page(browser, shots, logs=(dagster_dev.log,)) as page:
        page.goto(f"{dagster_dev.url}/assets/data_stats")
        for done in (1, 2):
            page.get_by_role("button", name=re.compile(r"Materialize$")).first.click(timeout=120_000)
            page.get_by_role("button", name="Confirm").click()  # queued_batch was never materialized here
            page.get_by_text("Launched run").first.wait_for()
            wait_for(lambda: materializations(dagster_dev.url, "data_stats") >= done, timeout=RUN_TIMEOUT_MS / 1000,
                     what=f"materialization {done} of data_stats")  # fmt: skip
        page.reload()
        metadata = page.get_by_text("Metadata", exact=True).locator("xpath=ancestor::*[.//button[contains(., 'Plots')]][1]")
        metadata.get_by_role("button", name=re.compile("Plots")).click()
        for name in ("approved", "approval_rate", "total_tokens", "queue_files"):
            expect(page.get_by_text(name, exact=True).first, f"a plot of {name}").to_be_visible()
        expect(page.locator("canvas, svg.recharts-surface").first, "the charts are drawn").to_be_visible()
        shots.save(page, "06-stats-plots")
