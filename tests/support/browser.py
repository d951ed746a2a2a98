"""Debian's Chromium, driven headless by Playwright, for tests of the Dagster UI.

No browser is downloaded (never ``playwright install``): Playwright drives
``/usr/bin/chromium`` (``bash scripts/install-system.sh`` installs it). The flags keep
Chromium off the network, which is closed on the test machines.

    with chromium() as browser, browser_page(browser, shots) as page:
        page.goto(url)
        shots.save(page, "01-asset-graph")

Screenshots go to ``test-artifacts/ui/`` under fixed names, so each run overwrites the
last; a step that fails leaves ``failure.png`` and ``failure.html`` there as well.
"""

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.dagster_processes import ROOT

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "ui"
LAUNCH_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]  # fmt: skip
VIEWPORT = {"width": 1600, "height": 1000}


class Shots:
    """Screenshots of a test's steps under ``folder``, one line per step."""

    def __init__(self, folder: Path = ARTIFACTS) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("failure*"):  # from an earlier failed run
            stale.unlink()

    def save(self, page, name: str) -> Path:
        path = self.folder / f"{name}.png"
        page.screenshot(path=str(path))
        return path

    def failure(self, page, logs: tuple[Path, ...] = ()) -> None:
        """What the page showed when a step failed: screenshot, HTML and server logs."""
        try:
            page.screenshot(path=str(self.folder / "failure.png"), full_page=True)
            (self.folder / "failure.html").write_text(page.content())
        except Exception as exc:  # a crashed page must not hide the test's own error
            (self.folder / "failure.html").write_text(f"could not read the page: {exc}")
        for log in logs:
            if log.exists():
                shutil.copy(log, self.folder / f"failure-{log.name}")


@contextmanager
def chromium() -> Iterator:
    """A headless Debian Chromium (Playwright's sync API), closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def browser_page(browser, shots: Shots, *, logs: tuple[Path, ...] = (), timeout_ms: float = 60_000) -> Iterator:
    """A page in a fresh browser context; if the block raises, ``shots.failure`` records
    the page (and copies ``logs``) before the error propagates."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(timeout_ms)
    page = context.new_page()
    try:
        yield page
    except BaseException:
        shots.failure(page, logs)
        raise
    finally:
        context.close()
