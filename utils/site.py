"""The course as a static site that works offline: every lesson and solution executed, with navigation and search.

    python -m utils.site build        # execute what has no fresh executed copy, render build/site/ (make site)
    python -m utils.site check        # every page present, every link and anchor resolves, figures embedded
    python -m utils.site screenshot   # open the index and a lesson in headless Chromium (make site-check)

Why nbconvert: it is already installed (JupyterLab needs it) and builds with no network. Jupyter Book 2 fetches
its theme at build time and the PyPI ``quarto-cli`` package downloads a binary at install; Sphinx with myst-nb
builds offline but adds about fifteen packages and minutes of install to every fresh clone. What nbconvert
lacks, this module adds: navigation between lessons, a page of contents per lesson, a search page over every
heading and question (plain JavaScript over an index file, so it works from ``file://``), the question index,
and a page listing the code each lesson builds from scratch. nbconvert's HTML loads MathJax and require.js from
a CDN; the template in ``utils/site_assets`` drops require.js (only widgets need it) and loads MathJax 3 from
the copy vendored there.

Executed copies are reused from ``build/executed/`` (``make test`` and ``make bench`` write them) when newer than
their notebook; the others are executed here with their default parameters. Each page says which parameters
produced its numbers.
"""

from __future__ import annotations

import argparse
import ast
import html
import importlib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat

from utils import colab, course

ASSETS = Path(__file__).resolve().parent / "site_assets"
SITE = course.ROOT / "build" / "site"
EXECUTED = course.ROOT / "build" / "executed"
LABEL = re.compile(r"<strong>\[(\d\d)-([a-z0-9-]+)\]</strong>")
# The prose the search indexes under each heading (characters): a section's interview answers, both languages,
# fit (lesson 15's "KV 缓存" is found in its answers, past the first 600 characters the index once kept).
SEARCH_TEXT = 12_000


@dataclass(frozen=True)
class Page:
    """One notebook of the site: its source, where its page goes, and its lesson."""

    source: Path
    href: str            # relative to the site root: "notebooks/04_training_efficiency.html"
    title: str
    lesson: str          # "04"

    @property
    def root(self) -> str:
        """The way back from this page to the site root."""
        return "../" * self.href.count("/")


def course_pages(lessons=course.LESSONS) -> list[Page]:
    """Every available lesson followed by its lab solution, in reading order."""
    pages = []
    for entry in lessons:
        if entry.status != "available":
            continue
        topic = entry.topic
        pages.append(Page(entry.notebook, f"notebooks/{entry.notebook.stem}.html", f"{entry.number} · {topic}",
                          entry.number))
        solution = entry.notebook.parent.parent / "solutions" / f"{entry.notebook.stem}_lab.ipynb"
        if entry.lab and solution.exists():
            pages.append(Page(solution, f"solutions/{solution.stem}.html", f"{entry.number} · {topic}: lab solution",
                              entry.number))
    return pages


# ---------------------------------------------------------------------------------------------------- executing

def executed_copy(page: Page, executed: Path) -> Path:
    return executed / page.source.parent.name / page.source.name


def is_newer(page: Page, executed: Path) -> bool:
    """An executed copy exists and is newer than its notebook."""
    copy = executed_copy(page, executed)
    return copy.exists() and copy.stat().st_mtime >= page.source.stat().st_mtime


def is_fresh(page: Page, executed: Path) -> bool:
    """An executed copy newer than its notebook that ran to the end with no error output (a failed run is tried
    again)."""
    if not is_newer(page, executed):
        return False
    notebook = nbformat.read(executed_copy(page, executed), as_version=4)
    return not notebook.metadata.get("papermill", {}).get("exception") and not error_outputs(notebook)


def execute(page: Page, executed: Path) -> str | None:
    """Run ``page``'s notebook with its default parameters into ``executed``; the error, or None."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    copy = executed_copy(page, executed)
    copy.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(str(page.source), str(copy), kernel_name="python3", cwd=str(page.source.parent),
                                   progress_bar=False, execution_timeout=1200)
    except PapermillExecutionError as error:
        return f"{error.ename}: {error.evalue}"
    return None


def error_outputs(notebook) -> list[str]:
    """Every error output of the notebook, as "cell N: Name: message" (an empty list: it ran clean).

    ``papermill.exception`` in the metadata says only that papermill stopped; a notebook executed some other way,
    or an error output in a cell after a caught failure, shows a traceback all the same. No lesson shows an
    error on purpose (it catches the exception and prints it), so any error output makes the page broken.
    """
    found = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if output.get("output_type") == "error":
                found.append(f"cell {index}: {output.get('ename', '?')}: {output.get('evalue', '')}".rstrip(": "))
    return found


def how_executed(notebook) -> tuple[str, str]:
    """(css class, sentence) saying which parameters produced the page's numbers."""
    run = notebook.metadata.get("papermill")
    if not run:
        if any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"):
            return "bml-warn", "Executed outside <code>make site</code>: its parameters are not recorded."
        return "bml-warn", ("Not executed: this page shows the code without its outputs. "
                            "<code>make site</code> executes it.")
    when = (run.get("end_time") or "")[:10]
    if run.get("exception") or error_outputs(notebook):
        return "bml-warn", f"This notebook stopped with an error when it was executed on {when}."
    parameters = run.get("parameters") or {}
    if not parameters:
        return "bml-ok", f"Executed on {when} with its default parameters: the numbers the text describes."
    shown = ", ".join(f"{k}={v!r}" for k, v in parameters.items())
    return "bml-warn", (f"Executed on {when} by the test suite with smaller parameters ({html.escape(shown)}): "
                        "numbers differ from a default run. <code>make bench</code> then <code>make site</code> "
                        "shows the default run.")


# ---------------------------------------------------------------------------------------------------- rendering

def figure_count(notebook) -> int:
    """Images among the notebook's outputs: the page must embed at least this many."""
    return sum(1 for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
               if any(kind.startswith("image/") for kind in output.get("data", {})))


def label_pages(pages: list[Page]) -> dict[str, str]:
    """Lesson number -> the page that defines its labels (**[04-flops]** and so on): the lesson's own page."""
    found = {}
    for page in pages:
        if page.source.parent.name == "notebooks":
            found.setdefault(page.lesson, page.href)
    return found


def link_labels(body: str, page: Page, owners: dict[str, str]) -> str:
    """The first **[NN-label]** on lesson NN's page becomes an anchor; every other one links to it."""
    seen: set[str] = set()

    def replace(match):
        label = f"{match.group(1)}-{match.group(2)}"
        owner = owners.get(match.group(1))
        if owner == page.href and label not in seen:
            seen.add(label)
            if f'id="{label}"' in body:       # the notebook's own <a id> anchor is already there
                return f'<strong class="bml-label">[{label}]</strong>'
            return f'<strong class="bml-label" id="{label}">[{label}]</strong>'
        if owner is None:
            return match.group(0)
        target = "" if owner == page.href else page.root + owner
        return f'<a class="bml-label" href="{target}#{label}"><strong>[{label}]</strong></a>'

    return LABEL.sub(replace, body)


class _Outline(HTMLParser):
    """Headings (id, level, text) of a rendered page and the prose under each, for the contents and search."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.sections: list[dict] = []
        self._heading = None
        self._skip = 0          # inside pre, script, style, a heading's "¶" link
        self._links: list[bool] = []   # open <a> tags: is each a heading's "¶" link?
        self._prose = 0         # inside p or li

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("h1", "h2", "h3") and attrs.get("id"):
            self._heading = {"id": attrs["id"], "level": int(tag[1]), "title": "", "text": ""}
        elif tag in ("pre", "script", "style"):
            self._skip += 1
        elif tag == "a":
            self._links.append("anchor-link" in (attrs.get("class") or ""))
            self._skip += self._links[-1]
        elif tag in ("p", "li"):
            self._prose += 1

    def handle_endtag(self, tag):
        if tag in ("h1", "h2", "h3") and self._heading is not None:
            self._heading["title"] = " ".join(self._heading["title"].split())
            self.sections.append(self._heading)
            self._heading = None
        elif tag in ("pre", "script", "style") and self._skip:
            self._skip -= 1
        elif tag == "a" and self._links:
            self._skip -= self._links.pop()
        elif tag in ("p", "li") and self._prose:
            self._prose -= 1

    def handle_data(self, data):
        if self._skip:
            return
        if self._heading is not None:
            self._heading["title"] += data
        elif self._prose and self.sections and len(self.sections[-1]["text"]) < SEARCH_TEXT:
            self.sections[-1]["text"] += " ".join(data.split()) + " "


def outline(body: str) -> list[dict]:
    parser = _Outline()
    parser.feed(body)
    return parser.sections


def nav_html(page: Page | None, pages: list[Page], root: str) -> str:
    links = [f'<a href="{root}index.html"><b>Big-Model Labs</b></a>', f'<a href="{root}questions.html">Questions</a>',
             f'<a href="{root}scratch.html">From scratch</a>']
    search = (f'<form class="bml-search" action="{root}search.html" method="get">'
              '<input name="q" type="search" placeholder="Search the course / 搜索" aria-label="Search"></form>')
    pager = ""
    if page is not None:
        i = pages.index(page)
        before = f'<a href="{root}{pages[i - 1].href}">← {html.escape(pages[i - 1].title)}</a>' if i else ""
        after = (f'<a href="{root}{pages[i + 1].href}">{html.escape(pages[i + 1].title)} →</a>'
                 if i + 1 < len(pages) else "")
        pager = f'<div class="bml-pager"><span>{before}</span><span>{after}</span></div>'
    return f'<nav class="bml-nav">{" · ".join(links)}{search}</nav>{pager}'


def render(page: Page, notebook, pages: list[Page]) -> tuple[str, list[dict]]:
    """The page's HTML (nbconvert's lab template, offline) and its outline."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="bml", extra_template_basedirs=[str(ASSETS / "templates")])
    status_class, status = how_executed(notebook)
    counterpart = ""
    for other in pages:
        if other.lesson == page.lesson and other is not page:
            kind = "The lesson" if other.source.parent.name == "notebooks" else "Its lab, with the answers"
            counterpart = f' {kind}: <a href="{page.root}{other.href}">{html.escape(other.title)}</a>.'
    header = (nav_html(page, pages, page.root) + f'<div class="bml-status {status_class}">{status}{counterpart}'
              f' Source: <code>{page.source.parent.name}/{page.source.name}</code>.</div><!--BML-CONTENTS-->')
    resources = {"bml": {"root": page.root, "header": header, "footer": nav_html(page, pages, page.root)},
                 "metadata": {"name": page.title}}
    body, _ = exporter.from_notebook_node(notebook, resources=resources)
    body = link_labels(body, page, label_pages(pages))
    sections = outline(body)
    contents = "".join(f'<li class="bml-h{s["level"]}"><a href="#{html.escape(s["id"], quote=True)}">'
                       f'{html.escape(s["title"])}</a></li>' for s in sections if s["level"] > 1)
    if contents:
        box = f'<details class="bml-contents"><summary>On this page</summary><ul>{contents}</ul></details>'
        body = body.replace("<!--BML-CONTENTS-->", box)
    body = body.replace("</head>", f'<meta name="bml-figures" content="{figure_count(notebook)}">\n</head>', 1)
    return body, sections


def shell(title: str, content: str, pages: list[Page], scripts: str = "") -> str:
    """A page of the site's own (index, questions, search, from scratch)."""
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1.0">\n<title>{html.escape(title)}'
            f'</title>\n<link rel="stylesheet" href="_static/site.css">\n<link rel="stylesheet" '
            f'href="_static/pygments.css">\n{scripts}</head>\n<body class="bml-page">\n'
            f'{nav_html(None, pages, "")}\n<main>\n{content}\n</main>\n</body>\n</html>\n')


def index_page(pages: list[Page], lessons=course.LESSONS) -> str:
    by_lesson: dict[str, list[Page]] = {}
    for page in pages:
        by_lesson.setdefault(page.lesson, []).append(page)
    rows = []
    for entry in lessons:
        topic = html.escape(entry.topic)
        own = by_lesson.get(entry.number, [])
        links = [f'<a href="{p.href}">{"lesson" if p.source.parent.name == "notebooks" else "lab, solved"}</a>'
                 for p in own]
        cell = topic if not own else f'<a href="{own[0].href}">{topic}</a>'
        rows.append(f'<tr><td>{entry.number}</td><td>{cell}</td><td>{html.escape(entry.question_zh)}<br>'
                    f'{html.escape(entry.question_en)}</td><td>{" · ".join(links) or "planned"}</td></tr>')
    return ("<h1>Big-Model Labs</h1>\n<p>Runnable, measured, checked answers to the questions teams building AI "
            "and large-model products face, and that interviewers ask. Every page below was executed; its first "
            "lines say with which parameters. Looking for one interview question? Use the "
            '<a href="questions.html">question index</a> or <a href="search.html">search</a> (中文 or English).'
            "</p>\n<p>To run a lesson yourself: <code>make lab</code> opens it in JupyterLab; the labs are yours to "
            "fill in under <code>workspace/</code>.</p>\n<table class=\"bml-table\"><thead><tr><th>#</th>"
            "<th>lesson</th><th>问题 / question</th><th>pages</th></tr></thead><tbody>\n"
            + "\n".join(rows) + "\n</tbody></table>")


def questions_page(pages: list[Page], table, lessons=course.LESSONS) -> str:
    from utils import questions

    own = {p.lesson: p for p in pages if p.source.parent.name == "notebooks"}
    parts = ["<h1>The question index</h1>", f"<p>All {len(table)} numbered questions of the five interview "
             "question banks the course is built from, grouped by the lesson that answers them.</p>"]
    for entry in lessons:
        rows = table[table.lesson == entry.number]
        if rows.empty:
            continue
        title = html.escape(f"{entry.number} · {entry.topic}")
        page = own.get(entry.number)
        heading = (f'<a href="{page.href}#{questions.anchor(entry.number)}">{title}</a>' if page
                   else f"{title} (planned)")
        parts.append(f'<h2 id="lesson-{entry.number}">{heading}</h2><p><i>{html.escape(entry.question_zh)} / '
                     f'{html.escape(entry.question_en)}</i></p><table class="bml-table"><thead><tr><th>bank</th>'
                     "<th>#</th><th>问题</th><th>question</th><th>answered in</th></tr></thead><tbody>")
        parts += [f"<tr><td>{r.bank}</td><td>{r.number}</td><td>{html.escape(r.title_zh)}</td>"
                  f"<td>{html.escape(r.title_en)}</td><td>{section_cell(page, r.section)}</td></tr>"
                  for r in rows.itertuples()]
        parts.append("</tbody></table>")
    return "\n".join(parts)


def section_cell(page: Page | None, section: str) -> str:
    if page is None:
        return "planned"
    name = "the whole lesson" if section.endswith("-question") else section
    return f'<a href="{page.href}#{section}">{name}</a>'


def utils_aliases(notebook) -> dict[str, str]:
    """Names a notebook binds to ``utils`` objects: {"dd": "utils.distributed", "psi": "utils.monitoring.psi"}."""
    aliases = {}
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        code = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for name in node.names:
                    if name.name.startswith("utils.") and name.asname:
                        aliases[name.asname] = name.name
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "utils":
                for name in node.names:
                    aliases[name.asname or name.name] = f"{node.module}.{name.name}"
    return aliases


def resolve(dotted: str):
    """The object at ``utils.module.attr...``, importing the longest module prefix."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            target = getattr(target, attribute)
        return target
    raise ImportError(dotted)


def scratch_listing(page: Page, notebook) -> list[dict]:
    """The ``utils`` functions the page shows with ``show.source(...)``: name, the cell that shows it, source."""
    aliases, found = utils_aliases(notebook), []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        for name in re.findall(r"\bsource\(\s*([A-Za-z_][\w.]*)\s*\)", cell.source):
            head, _, rest = name.partition(".")
            if head not in aliases:
                continue                      # defined in the notebook itself, and shown there
            dotted = aliases[head] + ("." + rest if rest else "")
            try:
                code = inspect.getsource(resolve(dotted))
            except (ImportError, AttributeError, TypeError, OSError):
                continue
            found.append({"name": dotted, "cell": f"cell-id={cell.get('id', '')}", "code": code})
    return found


def scratch_page(listings: list[tuple[Page, list[dict]]]) -> str:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    total = sum(len(found) for _, found in listings)
    parts = ["<h1>Built from scratch</h1>", f"<p>The {total} functions and classes the lessons build from scratch "
             "and keep in <code>utils</code> (so that later lessons and the lab checks share one tested version), "
             "each with the cell that presents it. Every one is checked equal to a maintained library in "
             "<code>tests/</code>.</p>"]
    for page, found in listings:
        if not found:
            continue
        parts.append(f'<h2 id="lesson-{page.lesson}"><a href="{page.href}">{html.escape(page.title)}</a></h2>')
        for item in found:
            parts.append(f'<h3 id="{html.escape(item["name"])}"><code>{html.escape(item["name"])}</code> '
                         f'<small><a href="{page.href}#{html.escape(item["cell"], quote=True)}">where the lesson '
                         f"shows it</a></small></h3>")
            parts.append(highlight(item["code"], PythonLexer(), HtmlFormatter(cssclass="highlight")))
    return "\n".join(parts)


SEARCH_PAGE = """<h1>Search</h1>
<p>Every heading of every page with the prose under it, and every interview question, in 中文 and English.
Every term must match: whole English words (British or American spelling), Chinese as written.</p>
<input id="bml-query" type="search" placeholder="e.g. 数据漂移, KV cache, rollback" autofocus>
<p id="bml-count"></p>
<ol id="bml-results"></ol>"""


def search_entries(outlines: list[tuple[Page, list[dict]]], table) -> list[dict]:
    entries = [{"t": s["title"], "p": page.title, "u": f'{page.href}#{s["id"]}', "x": s["text"].strip()}
               for page, sections in outlines for s in sections]
    lessons = {p.lesson: p for p, _ in outlines if p.source.parent.name == "notebooks"}
    for row in table.itertuples():
        page = lessons.get(row.lesson)
        if page is not None:
            entries.append({"t": f"{row.title_zh} / {row.title_en}", "p": f"question bank {row.bank}, Q{row.number}",
                            "u": f"{page.href}#{row.section}", "x": f"Answered by {page.title}, {row.section}."})
    return entries


# ---------------------------------------------------------------------------------------------------- building

def build(out: Path = SITE, executed: Path | None = EXECUTED, pages: list[Page] | None = None, *,
          lessons=course.LESSONS, table=None, run: bool = True, jobs: int = 2, log=print) -> list[str]:
    """Write the site to ``out``; the notebooks that failed to execute (an empty list when all ran).

    ``executed=None`` renders each notebook as it is on disk (the tests use notebooks that carry outputs);
    ``table`` is the question index (``utils.questions.load()`` by default).
    """
    from utils import questions

    pages = course_pages(lessons) if pages is None else pages
    table = questions.load() if table is None else table
    failures = []
    if executed is not None:
        stale = [page for page in pages if not is_fresh(page, executed)]
        if stale and run:
            log(f"executing {len(stale)} notebooks with their default parameters, {jobs} at a time "
                "(a fresh clone: about ten minutes on two cores)")
            if jobs > 1:  # one thread per kernel when kernels share the cores, as in the test suite
                for variable in ("BML_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
                    os.environ.setdefault(variable, str(max(1, (os.cpu_count() or 2) // jobs)))
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                for page, error in zip(stale, pool.map(lambda p: execute(p, executed), stale)):
                    log(f"  {page.source.parent.name}/{page.source.name}: {error or 'ok'}")
                    if error:
                        failures.append(f"{page.source.name}: {error}")
    if out.exists():
        shutil.rmtree(out)
    (out / "_static").mkdir(parents=True)
    shutil.copytree(ASSETS / "mathjax", out / "_static" / "mathjax")
    shutil.copy(ASSETS / "site.css", out / "_static" / "site.css")
    shutil.copy(ASSETS / "search.js", out / "_static" / "search.js")
    from pygments.formatters import HtmlFormatter
    (out / "_static" / "pygments.css").write_text(HtmlFormatter().get_style_defs(".highlight"), encoding="utf-8")

    outlines, listings = [], []
    for page in pages:
        source = page.source
        if executed is not None and is_newer(page, executed):   # a failed run too: its page shows the error
            source = executed_copy(page, executed)
        notebook = colab.without_colab(nbformat.read(source, as_version=4))   # the site loads nothing remote
        stopped = notebook.metadata.get("papermill", {}).get("exception")
        errors = error_outputs(notebook)
        if (stopped or errors) and not any(page.source.name in failure for failure in failures):
            failures.append(f"{page.source.name}: " + ("; ".join(errors) or "its executed copy stopped with an error"))
        body, sections = render(page, notebook, pages)
        target = out / page.href
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body, encoding="utf-8")
        outlines.append((page, sections))
        listings.append((page, scratch_listing(page, notebook)))
    (out / "index.html").write_text(shell("Big-Model Labs", index_page(pages, lessons), pages), encoding="utf-8")
    questions_html = shell("The question index", questions_page(pages, table, lessons), pages)
    (out / "questions.html").write_text(questions_html, encoding="utf-8")
    (out / "scratch.html").write_text(shell("Built from scratch", scratch_page(listings), pages), encoding="utf-8")
    index = "window.BML_SEARCH = " + json.dumps(search_entries(outlines, table), ensure_ascii=False) + ";\n"
    (out / "_static" / "search_index.js").write_text(index, encoding="utf-8")
    scripts = '<script src="_static/search_index.js"></script>\n<script defer src="_static/search.js"></script>\n'
    (out / "search.html").write_text(shell("Search", SEARCH_PAGE, pages, scripts), encoding="utf-8")
    return failures


# ---------------------------------------------------------------------------------------------------- checking

# What a broken page shows: Python's traceback header in a cell's output (IPython's error output, or a traceback
# printed to stderr), and the banner papermill puts on top of a notebook it stopped (its text and its anchor).
TRACEBACK = "Traceback (most recent call last)"
PAPERMILL_BANNER = ("An Exception was encountered at", "papermill-error-cell")


class _Links(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.refs: list[tuple[str, str, str]] = []     # (tag, attribute, value)
        self.figures = 0
        self.meta: dict[str, str] = {}
        self.tracebacks = 0     # outputs that show a traceback
        self.banner = False     # papermill's "An Exception was encountered" banner or its anchor
        self._output: list[bool] = []   # open <div>s: is each an output area's output?
        self._text: list[str] = []      # the text of the output being read

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "div":
            opens = "jp-OutputArea-output" in (attrs.get("class") or "").split() and not any(self._output)
            self._output.append(opens)
            if opens:
                self._text = []
        if PAPERMILL_BANNER[1] in (attrs.get("id") or "") + (attrs.get("href") or ""):
            self.banner = True
        for key in ("id", "name") if tag == "a" else ("id",):
            if attrs.get(key):
                self.ids.add(attrs[key])
        if tag == "meta" and attrs.get("name"):
            self.meta[attrs["name"]] = attrs.get("content", "")
        for attribute in ("href", "src"):
            if attrs.get(attribute) is not None:
                self.refs.append((tag, attribute, attrs[attribute]))
        if tag == "img" and (attrs.get("src") or "").startswith("data:image/"):
            self.figures += 1

    def handle_endtag(self, tag):
        if tag == "div" and self._output and self._output.pop():
            self.tracebacks += TRACEBACK in "".join(self._text)

    def handle_data(self, data):
        if any(self._output):
            self._text.append(data)
        if PAPERMILL_BANNER[0] in data:
            self.banner = True

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag == "div":
            self.handle_endtag(tag)


def check(out: Path = SITE, pages: list[Page] | None = None) -> list[str]:
    """Everything wrong with the built site, one readable line each (an empty list: all good).

    Every page present; every internal link and anchor resolves; nothing but a plain link points at the
    network (a script, style sheet or image from a CDN breaks offline); every figure is embedded; no page shows
    a traceback in an output or papermill's banner of a stopped run.
    """
    pages = course_pages() if pages is None else pages
    expected = ["index.html", "questions.html", "search.html", "scratch.html", "_static/mathjax/tex-svg-full.js",
                "_static/search_index.js", "_static/search.js", "_static/site.css"] + [p.href for p in pages]
    problems = [f"missing page {name}: run `python -m utils.site build`" for name in expected
                if not (out / name).exists()]
    parsed = {}
    for path in sorted(out.rglob("*.html")):
        parser = _Links()
        parser.feed(path.read_text(encoding="utf-8"))
        parsed[path.resolve()] = parser
    for path, parser in parsed.items():
        name = path.relative_to(out.resolve()).as_posix()
        if parser.tracebacks:
            problems.append(f"{name}: {parser.tracebacks} outputs show a traceback: the notebook failed")
        if parser.banner:
            problems.append(f"{name}: shows papermill's banner of a run that stopped with an exception")
        wanted = int(parser.meta.get("bml-figures", 0))
        if parser.figures < wanted:
            problems.append(f"{name}: {parser.figures} embedded figures, but its notebook has {wanted}")
        for tag, attribute, value in parser.refs:
            parts = urlsplit(value)
            if parts.scheme in ("http", "https") or value.startswith("//"):
                if tag != "a":
                    problems.append(f"{name}: <{tag} {attribute}> loads {value} from the network")
                continue
            if parts.scheme in ("mailto", "javascript"):
                continue
            if parts.scheme == "data":
                continue
            if tag == "img":
                problems.append(f"{name}: image {value} is not embedded")
            target = path if not parts.path else (path.parent / unquote(parts.path)).resolve()
            if not target.exists():
                problems.append(f"{name}: <{tag} {attribute}> points at {value}, which does not exist")
            elif parts.fragment and target.suffix == ".html":
                ids = parsed[target].ids if target in parsed else set()
                if parts.fragment not in ids and unquote(parts.fragment) not in ids:
                    problems.append(f"{name}: link {value}: no anchor #{parts.fragment} in {target.name}")
    return problems


# ---------------------------------------------------------------------------------------------------- browsing

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def screenshot(out: Path = SITE, pages: list[Page] | None = None, shots: Path | None = None) -> int:
    """Open the index and lesson 04 in headless Chromium, save screenshots, and check that MathJax typeset formulas."""
    browser = next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)
    if browser is None:
        print("no Chromium found: install it (Debian/Ubuntu: `sudo apt-get install chromium`) to open the site "
              "in a headless browser. Nothing was checked.")
        return 0
    if not (out / "index.html").exists():
        print("no site yet: run `make site` first", file=sys.stderr)
        return 1
    pages = course_pages() if pages is None else pages
    # Lesson 04 has the most formulas (17): MathJax must typeset some of them.
    lesson = next((p for p in pages if p.lesson == "04" and p.source.parent.name == "notebooks"), pages[0])
    shots = shots or out.parent / "site-screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=15000"]
    failed = 0
    for name, href, wants_math in (("index", "index.html", False), (Path(lesson.href).stem, lesson.href, True)):
        url = (out / href).resolve().as_uri()
        subprocess.run([browser, *flags, "--window-size=1280,1600", f"--screenshot={shots / (name + '.png')}", url],
                       capture_output=True, timeout=120)
        dom = subprocess.run([browser, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
        typeset = dom.count("<mjx-container")
        verdict = "ok" if typeset or not wants_math else "FAILED: MathJax typeset nothing"
        if "bml-nav" not in dom:
            verdict = "FAILED: the page did not load"
        failed += verdict != "ok"
        print(f"{href}: {len(dom):,} characters of DOM, {typeset} formulas typeset, screenshot "
              f"{shots / (name + '.png')}: {verdict}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.site", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["build", "check", "screenshot"])
    parser.add_argument("--out", type=Path, default=SITE, help="where the site goes (default build/site)")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks executed at once (default 2)")
    parser.add_argument("--no-execute", action="store_true",
                        help="render notebooks without fresh executed copies as they are, without outputs")
    args = parser.parse_args(argv)
    if args.command == "screenshot":
        return screenshot(args.out)
    if args.command == "build":
        failures = build(args.out, run=not args.no_execute, jobs=args.jobs)
        print(f"wrote {args.out}/index.html")
        for failure in failures:
            print(f"failed to execute: {failure}", file=sys.stderr)
        if failures:
            return 1
    problems = check(args.out)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"site check: {'ok' if not problems else f'{len(problems)} problems'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
