"""A real browser for tests: the system's headless Chromium (Debian package `chromium`) driven by Playwright.

    with chromium_page(width=390) as page:      # page.errors, page.requests: what the page logged and asked for
        page.goto((folder / "report.html").as_uri())
        media = media_of(page)                   # every image's naturalWidth, every audio element's duration

Playwright's own browser downloads are never used: `.ci/run` installs Chromium with apt.
"""
from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--autoplay-policy=no-user-gesture-required"]

# Every <img> and <audio> of the page: images must have decoded (naturalWidth > 0); each audio element is
# asked to load its file (its preload is "none" on the page, so the test asks for metadata) and must report
# a duration, or the element's error code.
_MEDIA = """async () => {
  const images = Array.from(document.images).map(i => ({src: i.getAttribute("src"), width: i.naturalWidth}));
  const audio = await Promise.all(Array.from(document.querySelectorAll("audio")).map(a => new Promise(done => {
    const report = () => done({src: a.getAttribute("src"), duration: a.duration,
                               error: a.error ? a.error.code : null});
    a.addEventListener("loadedmetadata", report, {once: true});
    a.addEventListener("error", report, {once: true});
    a.preload = "metadata";
    a.load();
  })));
  return {images, audio};
}"""


@contextmanager
def chromium_page(width: int = 1280, height: int = 900):
    """A fresh Chromium page; collects console errors, page errors and every URL the page asked for."""
    from playwright.sync_api import sync_playwright
    if not Path(CHROMIUM).exists():
        raise AssertionError("Chromium is not installed: apt-get install chromium (.ci/run does this as root)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.errors, page.requests = [], []
            page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: page.errors.append(str(e)))
            page.on("request", lambda r: page.requests.append(r.url))
            yield page
        finally:
            browser.close()


def media_of(page) -> dict:
    return page.evaluate(_MEDIA)


def screenshots(page, shots: Path, name: str, widths=(1280, 390)) -> list[Path]:
    """Full-page screenshots at each width; returns their paths."""
    shots.mkdir(parents=True, exist_ok=True)
    paths = []
    for width in widths:
        page.set_viewport_size({"width": width, "height": 900})
        path = shots / f"{name}_{width}.png"
        page.screenshot(path=str(path), full_page=True)
        paths.append(path)
    return paths
