"""The built site, checked as a reader sees it: every chapter page in headless Chromium, opened
from file:// with no network, at a 1280-px-wide window.

Per page: a title, no error output, non-empty figures, the Colab link to an existing notebook,
math typeset by the site's own MathJax (no raw TeX left), every slider switching its figure, no
code cell and no output (folded ones opened) scrolling sideways, and the page's weight (written to
_build/screenshots/weights.json). On a chapter page, what a learner sees with every fold closed:
at most PAGE_WORD_LIMIT words (code and outputs included) and PAGE_TABLE_LIMIT tables (written to
_build/screenshots/learner.json), and a concept question that answers when an answer is opened.
Screenshots of every page go to _build/screenshots.

Accessibility, on every page of the site (folds opened): axe-core (installed offline by
`make axe`, from npm into .venv/axe; ``AXE_CORE_JS`` points elsewhere) with the WCAG 2.0 and 2.1
A and AA rules finds no violation; no image has an empty alt text or a file name as alt text;
and no figure carries an automatic description (``data-description="automatic"``, from
``coursekit.figures``: a figure nobody described). The violations are written to
_build/screenshots/axe.json.
"""

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
MAX_WEIGHT = 3_000_000  # bytes per chapter page
TEXT_SUFFIXES = {".html", ".js", ".css", ".svg", ".json", ".txt"}  # what a web server gzips

AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

pytestmark = pytest.mark.browser


def _chapters():
    sys.path.insert(0, str(ROOT))
    from tools.notebooks import chapter_paths

    return [p.relative_to(ROOT).with_suffix("") for p in chapter_paths(ROOT)]


def _pages() -> list[Path]:
    """Every page of the site (the toc's files, without suffix), and its index and search pages."""
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", [{"chapters": toc.get("chapters", [])}]):
        files += [c["file"] for c in part.get("chapters", [])]
    return [Path(f).with_suffix("") for f in files] + [Path("genindex"), Path("search")]


def _expected_sliders(chapter: Path) -> int:
    """How many slider outputs the chapter's code makes: cells whose last line calls a ``…_slider``."""
    text = (ROOT / chapter.with_suffix(".md")).read_text()
    cells = re.findall(r"^```\{code-cell\}[^\n]*\n(.*?)^```\s*$", text, re.M | re.S)
    return sum(bool(re.match(r"\w*_slider\(", cell.strip().splitlines()[-1])) for cell in cells if cell.strip())


@pytest.fixture(scope="module")
def site():
    if not (HTML / "index.html").exists():
        subprocess.run([sys.executable, "-m", "jupyter_book", "build", str(ROOT), "-W", "--keep-going"], check=True)
    return HTML


def _driver(javascript: bool = True):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not (chromium and driver_path):
        pytest.fail("chromium and chromedriver are needed (make test installs Debian's packages)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,2000",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # every file the page loads
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    return driver


@pytest.fixture(scope="module")
def browser():
    driver = _driver()
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def browser_without_javascript():
    driver = _driver(javascript=False)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def learner():
    found = {}
    yield found
    if found:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / "learner.json").write_text(json.dumps(found, indent=1, sort_keys=True))


@pytest.fixture(scope="module")
def axe_source() -> str:
    path = Path(os.environ.get("AXE_CORE_JS", ROOT / ".venv" / "axe" / "node_modules" / "axe-core" / "axe.min.js"))
    if not path.is_file():
        pytest.fail(f"axe-core is needed at {path} (make axe installs it from npm)")
    return path.read_text()


@pytest.fixture(scope="module")
def axe_results():
    found = {}
    yield found
    if found:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / "axe.json").write_text(json.dumps(found, indent=1, sort_keys=True))


@pytest.fixture(scope="module")
def weights():
    found = {}
    yield found
    if found:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / "weights.json").write_text(json.dumps(found, indent=1, sort_keys=True))


def wait_for_mathjax(browser) -> str:
    """Wait until MathJax has typeset the page; 'none' where the page loads no MathJax."""
    return browser.execute_async_script("""
        var done = arguments[arguments.length - 1], tries = 0;
        (function wait() {
          if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
            MathJax.startup.promise.then(function () { done("typeset"); },
                                         function (e) { done("error: " + e); });
          } else if (++tries > 400) { done("none"); } else { setTimeout(wait, 50); }
        })();""")


VISIBLE_TEXT = """
    var walker = document.createTreeWalker(document.querySelector("main") || document.body,
                                           NodeFilter.SHOW_TEXT), out = [], node;
    while ((node = walker.nextNode())) {
      var p = node.parentElement;
      if (p.closest("pre, code, script, style, mjx-container, .cell_input")) continue;
      if (!p.getClientRects().length) continue;  // not displayed
      out.push(node.textContent);
    }
    return out.join(" ");"""


# What a reader sees in the article with the folds as they are: its rendered text (innerText:
# code and outputs included, closed folds not), and the tables displayed.
SEEN = """
    var root = document.querySelector("article") || document.querySelector("main");
    // a table in a closed fold keeps its layout boxes in today's Chromium (the fold's content is
    // content-visibility: hidden), so ask whether it can be seen, not whether it has boxes
    var tables = Array.from(root.querySelectorAll("table")).filter(
      t => t.checkVisibility() && !t.closest("details:not([open])") && !t.parentElement.closest("table"));
    return [root.innerText, tables.length];"""


def learner_view(browser) -> dict:
    """Words (as the prose count: runs of letters) and tables a reader sees with every fold closed."""
    browser.execute_script("document.querySelectorAll('details').forEach(d => d.open = false)")
    text, tables = browser.execute_script(SEEN)
    return {"words": len(re.findall(r"[A-Za-z][A-Za-z'-]*", text)), "tables": tables}


def answer_a_question(browser, chapter) -> int:
    """Open a wrong and the right answer of the page's first concept question (no kernel, no
    network): each shows its verdict in words. Returns the number of questions on the page."""
    from selenium.webdriver.common.by import By

    quizzes = browser.find_elements(By.CSS_SELECTOR, ".coursekit-quiz")
    if not quizzes:
        return 0
    quiz = quizzes[0]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", quiz)
    for right, verdict in (("false", "Not quite."), ("true", "Right.")):
        choice = quiz.find_element(By.CSS_SELECTOR, f"details[data-right={right}]")
        feedback = choice.find_element(By.CSS_SELECTOR, ".coursekit-quiz-feedback")
        assert not feedback.is_displayed(), f"feedback shown before answering on {chapter}"
        choice.find_element(By.CSS_SELECTOR, "summary").click()
        assert feedback.is_displayed() and feedback.text.startswith(verdict), (chapter, feedback.text)
    browser.save_screenshot(str(SCREENSHOTS / f"{chapter.name}-question.png"))
    return len(quizzes)


def check_math(browser, chapter):
    from selenium.webdriver.common.by import By

    sources = browser.find_elements(By.CSS_SELECTOR, ".math")
    if not sources:
        return
    assert wait_for_mathjax(browser) == "typeset", f"MathJax did not run on {chapter}"
    containers = browser.find_elements(By.CSS_SELECTOR, "mjx-container")
    assert len(containers) >= len(sources), f"{len(sources)} formulas, {len(containers)} typeset, on {chapter}"
    assert not browser.find_elements(By.CSS_SELECTOR, "mjx-merror"), f"a MathJax error on {chapter}"
    for container in containers:  # an undefined macro would show as its name, backslash and all
        assert "\\" not in container.get_attribute("textContent"), container.get_attribute("textContent")
    text = browser.execute_script(VISIBLE_TEXT)
    # ... and no dollar left over (a $…$ the parser did not pair, or a computed sentence whose
    # Markdown was not parsed as MyST), nor a role shown as text
    for delimiter in ("\\(", "\\)", "\\[", "\\]", "$", "{term}`", "{doc}`"):
        where = text.find(delimiter)
        assert where < 0, f"raw TeX {delimiter!r} on {chapter}: …{text[max(where - 60, 0) :][:120]}…"
    # the site's own MathJax, not a CDN's
    scripts = [s.get_attribute("src") for s in browser.find_elements(By.CSS_SELECTOR, "script[src*=mathjax]")]
    assert scripts and all(s.startswith("file://") for s in scripts), scripts


def visible_frames(slider) -> list[int]:
    from selenium.webdriver.common.by import By

    return [i for i, image in enumerate(slider.find_elements(By.CSS_SELECTOR, "img")) if image.is_displayed()]


def check_sliders(browser, chapter):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    sliders = browser.find_elements(By.CSS_SELECTOR, ".coursekit-slider")
    assert len(sliders) == _expected_sliders(chapter), f"sliders on {chapter}"
    for number, slider in enumerate(sliders):
        control = slider.find_element(By.CSS_SELECTOR, "input[type=range]")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", slider)
        assert control.is_displayed(), f"the slider's control is hidden on {chapter}"
        (start,) = visible_frames(slider)
        label = slider.find_element(By.CSS_SELECTOR, "output").text
        key = Keys.ARROW_LEFT if start == int(control.get_attribute("max")) else Keys.ARROW_RIGHT
        control.send_keys(key)
        (moved,) = visible_frames(slider)
        assert moved == start + (1 if key == Keys.ARROW_RIGHT else -1), (start, moved)
        images = slider.find_elements(By.CSS_SELECTOR, "img")
        assert images[moved].get_attribute("src") != images[start].get_attribute("src"), "the figure did not change"
        assert slider.find_element(By.CSS_SELECTOR, "output").text != label
        browser.save_screenshot(str(SCREENSHOTS / f"{chapter.name}-slider{number}.png"))
        control.send_keys(Keys.ARROW_RIGHT if key == Keys.ARROW_LEFT else Keys.ARROW_LEFT)
        assert visible_frames(slider) == [start]


def check_learner_path(browser, chapter, learner):
    from tools.chapter_metrics import PAGE_TABLE_LIMIT, PAGE_WORD_LIMIT, PENDING_TEACH

    seen = learner_view(browser)
    seen["questions"] = answer_a_question(browser, chapter)
    learner[chapter.name] = seen
    print(f"{chapter}: {seen}")
    if chapter.name in PENDING_TEACH:
        return
    assert seen["words"] <= PAGE_WORD_LIMIT, f"{seen['words']} visible words on {chapter} (limit {PAGE_WORD_LIMIT})"
    assert seen["tables"] <= PAGE_TABLE_LIMIT, f"{seen['tables']} visible tables on {chapter} ({PAGE_TABLE_LIMIT})"
    assert seen["questions"] >= 2, f"{seen['questions']} concept questions on {chapter} (2-4)"


def check_code_fits(browser, chapter):
    from selenium.webdriver.common.by import By

    assert browser.execute_script("return window.innerWidth") == 1280
    # folded cells (solutions, plumbing) count too: open them all first
    browser.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
    for kind, selector in (
        ("code cell", "div.cell_input pre"),
        ("printed output", "div.cell_output pre"),
        ("output", "div.cell_output div.output"),
    ):
        for block in browser.find_elements(By.CSS_SELECTOR, selector):
            scroll, client = browser.execute_script(
                "return [arguments[0].scrollWidth, arguments[0].clientWidth]", block
            )
            assert scroll <= client + 1, (
                f"a {kind} scrolls sideways on {chapter} ({scroll} > {client} px): "
                f"{block.get_attribute('textContent')[:80]!r}"
            )


def page_weight(browser, page: Path) -> dict:
    """Bytes the page loads: ``raw`` (as stored), ``transfer`` (text files gzip-compressed, as a
    web server sends them) and ``own`` (the page's HTML and images, without the theme and MathJax
    files that every page shares and a browser caches)."""
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    weight = {"raw": 0, "transfer": 0, "own": 0, "files": 0}
    for url in dict.fromkeys(urls):
        parsed = urlparse(url)
        assert parsed.scheme in ("file", "data"), f"{page.name} loads {url[:100]} from the network"
        if parsed.scheme != "file":
            continue  # data: URLs are inside the HTML, counted with it
        path = Path(unquote(parsed.path))
        if not path.is_file():
            continue
        data = path.read_bytes()
        weight["raw"] += len(data)
        weight["transfer"] += len(gzip.compress(data, 6)) if path.suffix in TEXT_SUFFIXES else len(data)
        weight["files"] += 1
        if "_static" not in path.parts:
            weight["own"] += len(data)
    return weight


@pytest.mark.parametrize("chapter", _chapters(), ids=str)
def test_chapter_page(site, browser, weights, learner, chapter):
    from selenium.webdriver.common.by import By

    page = site / chapter.with_suffix(".html")
    assert page.exists(), f"{page} was not built"
    browser.get_log("performance")  # drop what earlier pages loaded
    browser.get(page.as_uri())
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
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
        links = [
            a.get_attribute("href")
            for a in browser.find_elements(By.CSS_SELECTOR, "a")
            if "colab.research.google.com" in (a.get_attribute("href") or "")
        ]
        assert links, f"no Colab link on {chapter}"
        for link in links:
            relative = link.split("/blob/", 1)[1].split("/", 1)[1]
            assert relative == f"{chapter}.ipynb" and (ROOT / relative).exists(), link
    check_math(browser, chapter)
    if chapter.name[:2].isdigit():
        check_learner_path(browser, chapter, learner)
    check_code_fits(browser, chapter)
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(SCREENSHOTS / f"{chapter.name}.png"))
    check_sliders(browser, chapter)
    weight = page_weight(browser, page)
    weights[str(chapter)] = weight
    print(f"{chapter}: {weight}")
    assert weight["transfer"] < MAX_WEIGHT and weight["own"] < MAX_WEIGHT, weight


@pytest.mark.parametrize("chapter", [c for c in _chapters() if _expected_sliders(c)], ids=str)
def test_slider_pages_read_without_javascript(site, browser_without_javascript, chapter):
    """With JavaScript off a slider is its default figure, a plain image; the control is hidden."""
    from selenium.webdriver.common.by import By

    browser = browser_without_javascript
    browser.get((site / chapter.with_suffix(".html")).as_uri())
    sliders = browser.find_elements(By.CSS_SELECTOR, ".coursekit-slider")
    assert len(sliders) == _expected_sliders(chapter)
    for slider in sliders:
        assert len(visible_frames(slider)) == 1
        assert not slider.find_element(By.CSS_SELECTOR, "input[type=range]").is_displayed()
    browser.save_screenshot(str(SCREENSHOTS / f"{chapter.name}-no-javascript.png"))


def test_frame_slider_html_in_the_browser(tmp_path, browser, browser_without_javascript):
    """The static slider's own HTML and script, without the site: keys move it, JS off shows the default."""
    import io

    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from coursekit.widgets import FrameSlider

    frames = []
    for shade in (0, 80, 160, 240):
        buffer = io.BytesIO()
        Image.new("RGB", (40, 20), (shade, 0, 0)).save(buffer, format="png")
        frames.append(buffer.getvalue())
    two = FrameSlider("c", ["1", "2", "3", "4"], frames, 1).html() + FrameSlider("ε", ["a", "b"], frames[:2], 0).html()
    page = tmp_path / "slider.html"
    page.write_text(f"<!doctype html><meta charset=utf-8><body>{two}</body>")
    browser.get(page.as_uri())
    first, second = browser.find_elements(By.CSS_SELECTOR, ".coursekit-slider")
    assert visible_frames(first) == [1] and visible_frames(second) == [0]
    control = first.find_element(By.CSS_SELECTOR, "input")
    control.send_keys(Keys.ARROW_RIGHT)
    assert visible_frames(first) == [2] and first.find_element(By.CSS_SELECTOR, "output").text == "3"
    control.send_keys(Keys.END)
    assert visible_frames(first) == [3]
    assert visible_frames(second) == [0]  # each slider drives its own frames only
    browser_without_javascript.get(page.as_uri())
    first = browser_without_javascript.find_elements(By.CSS_SELECTOR, ".coursekit-slider")[0]
    assert visible_frames(first) == [1]
    assert not first.find_element(By.CSS_SELECTOR, "input").is_displayed()


# Wait until the page and its scripts have finished (the theme's buttons are made by scripts, and
# _static/coursekit-a11y.js names them), with transitions off, then let the course's fix run once
# more: axe checks the page a reader meets, not one caught half-built or halfway through a fade.
SETTLE = """
    var done = arguments[arguments.length - 1], tries = 0;
    // the final colours, not a fade caught halfway (the theme animates some of them)
    var still = document.createElement("style");
    still.textContent = "*, *::before, *::after {transition: none !important; animation: none !important}";
    document.head.appendChild(still);
    (function wait() {
      if (document.readyState === "complete" && window.coursekitA11yFix) {
        setTimeout(function () { window.coursekitA11yFix(); done("settled"); }, 100);
      } else if (++tries > 200) { done("readyState " + document.readyState); } else { setTimeout(wait, 50); }
    })();"""

RUN_AXE = """
    var tags = arguments[0], done = arguments[arguments.length - 1];
    axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]}).then(
      function (r) {
        done(r.violations.map(function (v) {
          return {id: v.id, impact: v.impact, help: v.help, count: v.nodes.length,
                  nodes: v.nodes.slice(0, 3).map(function (n) {
                    return n.target.join(" ") + " :: " + (n.failureSummary || "").slice(0, 300); })};
        }));
      },
      function (e) { done([{id: "axe-error", help: String(e), count: 1, nodes: []}]); });"""

# Every image in the page's content whose alt text is missing, empty or a file name, and every
# figure whose description is automatic (coursekit.figures: nobody described it).
BAD_IMAGES = """
    var bad = [];
    document.querySelectorAll("main img, article img").forEach(function (img) {
      var alt = img.getAttribute("alt"), src = img.getAttribute("src") || "";
      var name = src.startsWith("data:") ? "(embedded image)" : src.split("/").pop();
      if (alt === null || !alt.trim()) { bad.push("no alt text: " + name); return; }
      alt = alt.trim();
      if (/\\.(png|jpe?g|gif|svg|webp)$/i.test(alt) || alt.indexOf("_images/") >= 0 || alt === name) {
        bad.push("a file name as alt text: " + alt.slice(0, 80));
      }
      if (img.getAttribute("data-description") === "automatic") {
        bad.push("an automatic description (describe the figure where it is drawn): " + alt.slice(0, 120));
      }
    });
    return bad;"""


@pytest.mark.parametrize("page", _pages(), ids=str)
def test_page_accessibility(site, browser, axe_source, axe_results, page):
    """axe-core's WCAG 2.0/2.1 A and AA rules, every fold opened: no violation; and every image
    has a written text description."""
    path = site / page.with_suffix(".html")
    assert path.exists(), f"{path} was not built"
    browser.get(path.as_uri())
    settled = browser.execute_async_script(SETTLE)
    assert settled == "settled", f"{page}: the page's scripts did not finish ({settled})"
    browser.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
    bad = browser.execute_script(BAD_IMAGES)
    browser.execute_script(axe_source)
    violations = browser.execute_async_script(RUN_AXE, AXE_TAGS)
    axe_results[str(page)] = {"violations": violations, "images": bad}
    summary = [f"{v['id']} ({v['impact']}, {v['count']}×): {v['help']}; e.g. {v['nodes'][:1]}" for v in violations]
    assert not violations, f"axe-core on {page}:\n" + "\n".join(summary)
    assert not bad, f"images without a written description on {page}:\n" + "\n".join(bad[:10])
