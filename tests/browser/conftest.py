"""A stack (sqlite flavour: the browser checks the UIs, not the stores) holding driftloop's models and a
monitor flow run, and headless Chromium (Debian's /usr/bin/chromium) driven by Playwright."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.stack.servers import Stack

CHROMIUM = os.environ.get("DRIFTLOOP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
SCREENSHOTS = Path(os.environ.get("DRIFTLOOP_SCREENSHOTS", "/tmp/driftloop-screenshots"))


# Module scope, not session: Playwright's sync API keeps an event loop running in the main thread while
# it is open, and every later test calling asyncio.run() (Prefect's sync client does) would fail.
@pytest.fixture(scope="module")
def ui_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("ui-stack"), backend="sqlite")
    stack.up()
    try:
        yield stack
    finally:
        stack.down()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: run .ci/install-integration (as root) first", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: run .ci/install-integration first", pytrace=False)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()
