"""The built site, checked as a reader sees it: every chapter page in headless Chromium."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"

pytestmark = pytest.mark.browser


def _chapters():
    sys.path.insert(0, str(ROOT / "src"))
    from coursekit.notebooks import chapter_paths

    return [p.relative_to(ROOT).with_suffix("") for p in chapter_paths(ROOT)]


@pytest.fixture(scope="module")
def site():
    if not (HTML / "index.html").exists():
        subprocess.run([sys.executable, "-m", "jupyter_book", "build", str(ROOT), "-W", "--keep-going"], check=True)
    return HTML


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not (chromium and driver_path):
        pytest.fail("chromium and chromedriver are needed (make test installs Debian's packages)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,2000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.mark.parametrize("chapter", _chapters(), ids=str)
def test_chapter_page(site, browser, chapter):
    from selenium.webdriver.common.by import By

    page = site / chapter.with_suffix(".html")
    assert page.exists(), f"{page} was not built"
    browser.get(page.as_uri())
    titles = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "h1") if h.is_displayed()]
    assert titles and titles[0].strip(), "the page has no visible title"
    assert browser.title.strip()
    # no error output from execution
    for selector in (".output.traceback", ".output.error", "div.cell_output .output.stderr", ".admonition.error"):
        assert not browser.find_elements(By.CSS_SELECTOR, selector), f"{selector} on {chapter}"
    assert "Traceback (most recent call last)" not in browser.page_source
    # figures: present and non-empty
    if chapter.name != "intro":
        images = browser.find_elements(By.CSS_SELECTOR, "div.cell_output img")
        assert images, f"no figure on {chapter}"
        for image in images:
            width = browser.execute_script("return arguments[0].naturalWidth", image)
            assert width and width > 10, f"an empty image on {chapter}"
        # the Colab link points at the chapter's notebook, which exists in the repository
        links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "a") if
                 "colab.research.google.com" in (a.get_attribute("href") or "")]
        assert links, f"no Colab link on {chapter}"
        for link in links:
            relative = link.split("/blob/", 1)[1].split("/", 1)[1]
            assert relative == f"{chapter}.ipynb" and (ROOT / relative).exists(), link
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / f"{chapter.name}.png"))
