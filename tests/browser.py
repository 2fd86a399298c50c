"""A real browser for the page tests: Debian's Chromium, headless, driven by Playwright (never
``playwright install``: it downloads a browser of its own).  Pages are 1366x768, the smallest
screen the pages are made for, and each test saves a screenshot of every page it shows in
``SCREENSHOTS`` (``HUB_SCREENSHOTS``, default ``test-screenshots/``)."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import Browser, Page, ViewportSize, async_playwright

CHROMIUM = os.environ.get("HUB_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip
VIEWPORT: ViewportSize = {"width": 1366, "height": 768}
SCREENSHOTS = Path(os.environ.get("HUB_SCREENSHOTS", Path(__file__).parent.parent / "test-screenshots"))


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def logged_in(browser: Browser, base_url: str, username: str, password: str) -> Page:
    """A page of its own (its own cookies) after logging in through the login form."""
    context = await browser.new_context(viewport=VIEWPORT, base_url=base_url, locale="ru-RU")
    page = await context.new_page()
    await page.goto("/login")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await page.wait_for_load_state("networkidle")
    return page


# Elements wider than the window, or reaching past its right edge: what a broken layout at
# 1366x768 looks like (a horizontal scrollbar, a cut-off button, a table pushing the page wide).
_OVERFLOWING = (Path(__file__).parent / "overflowing.js").read_text()


async def check_layout(page: Page) -> None:
    """Nothing sticks out of the 1366-pixel window: the page does not scroll sideways and every
    element (outside a box that scrolls on its own) ends inside it."""
    overflowing = await page.evaluate(_OVERFLOWING)
    assert not overflowing, f"{page.url}: layout broken at {VIEWPORT['width']}px: {overflowing}"


async def screenshot(page: Page, name: str) -> Path:
    """Saves the whole page, after checking that its layout holds at 1366x768."""
    await check_layout(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
