"""The offline site, built from a small course in a temporary folder: pages, links, anchors, figures, search.

The real course's site (39 executed notebooks, about 40 s to render) is built and checked by `make site`, which
runs the same `site.check`; here a three-page course built in about a second exercises every part of it, and each
mistake the check exists for is made on purpose and must be caught.
"""

import base64
import json
import re
import shutil

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from utils import course, site

# A 1x1 PNG: the figure each executed notebook carries.
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cfc0f01f0005000201"
    "e9d2cf9c0000000049454e44ae426082")).decode()
LESSONS = (course.Lesson("04", "alpha", "如何加速训练？", "How do you train faster?", "available"),
           course.Lesson("18", "beta", "如何处理长序列？", "How do you handle long sequences?", "available", lab=False),
           course.Lesson("19", "gamma", "商业价值？", "What is it worth?"))
QUESTIONS = pd.DataFrame({"bank": ["000", "001", "004"], "number": [2, 3, 30], "lesson": ["04", "04", "18"],
                          "title_zh": ["如何优化AI大模型的训练速度？", "如何优化训练过程？", "如何处理长序列？"],
                          "title_en": ["Faster training?", "A better training process?", "Long sequences?"],
                          "section": ["04-measure", "04-question", "18-measure"]})


def notebook(number, title, figure=True, parameters=None, references=""):
    cells = [
        new_markdown_cell(f'# {number} · {title}\n\n<a id="{number}-question"></a>\n\n> **The question:** why?\n\n'
                          f"## 1. Measure it\n\n**[{number}-measure]** The loss is $L = -\\log p$. {references}"),
        new_code_cell("from utils import metrics, show\n\ndef local():\n    return 1\n\n"
                      "show.source(metrics.confusion_matrix)\nshow.source(local)",
                      outputs=[new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"})]
                      if figure else []),
        new_markdown_cell(f"## 2. Interview questions\n\nThe proof: **[{number}-measure]**."),
    ]
    result = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                "language": "python"}})
    if parameters is not None:
        result.metadata["papermill"] = {"parameters": parameters, "end_time": "2026-11-24T10:00:00"}
    return result


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    sources = {"notebooks/04_alpha.ipynb": notebook("04", "Alpha", parameters={"steps": 2}),
               "solutions/04_alpha_lab.ipynb": notebook("04", "Alpha lab", figure=False, parameters={}),
               "notebooks/18_beta.ipynb": notebook("18", "Beta", figure=False, references="See **[04-measure]**.")}
    for name, nb in sources.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, root / name)
    pages = [site.Page(root / "notebooks/04_alpha.ipynb", "notebooks/04_alpha.html", "04 · alpha", "04"),
             site.Page(root / "solutions/04_alpha_lab.ipynb", "solutions/04_alpha_lab.html", "04 · alpha: lab", "04"),
             site.Page(root / "notebooks/18_beta.ipynb", "notebooks/18_beta.html", "18 · beta", "18")]
    out = root / "site"
    assert site.build(out, executed=None, pages=pages, lessons=LESSONS, table=QUESTIONS, log=lambda *_: None) == []
    return out, pages


def read(out, name):
    return (out / name).read_text(encoding="utf-8")


def test_the_built_site_passes_its_own_check(built):
    out, pages = built
    assert site.check(out, pages) == []


def test_figures_are_embedded_and_math_loads_from_the_site_itself(built):
    out, _ = built
    page = read(out, "notebooks/04_alpha.html")
    assert f"data:image/png;base64,{PNG}" in page
    assert re.search(r'<script defer(="")? src="../_static/mathjax/tex-svg-full.js">', page)
    assert (out / "_static/mathjax/tex-svg-full.js").stat().st_size > 1_000_000
    for path in out.rglob("*.html"):
        assert not re.search(r'<(script|link|img)[^>]+(src|href)="(https?:)?//', read(out, path.relative_to(out))), \
            f"{path.name} loads something from the network"


def test_labels_become_anchors_and_references_link_to_them_across_pages(built):
    out, _ = built
    alpha, beta = read(out, "notebooks/04_alpha.html"), read(out, "notebooks/18_beta.html")
    assert alpha.count('id="04-measure"') == 1
    assert '<a class="bml-label" href="#04-measure">' in alpha
    assert '<a class="bml-label" href="../notebooks/04_alpha.html#04-measure">' in beta
    assert beta.count('id="18-measure"') == 1


def test_navigation_follows_reading_order_lesson_then_its_lab(built):
    out, _ = built
    lab = read(out, "solutions/04_alpha_lab.html")
    pager = re.search(r'<div class="bml-pager">(.*?)</div>', lab).group(1)
    assert re.findall(r'href="([^"]+)"', pager) == ["../notebooks/04_alpha.html", "../notebooks/18_beta.html"]
    assert 'The lesson: <a href="../notebooks/04_alpha.html">' in lab


def test_each_page_says_which_parameters_produced_its_numbers(built):
    out, _ = built
    assert "smaller parameters (steps=2)" in read(out, "notebooks/04_alpha.html")
    assert "with its default parameters" in read(out, "solutions/04_alpha_lab.html")
    assert "Not executed" in read(out, "notebooks/18_beta.html")


def test_index_and_question_pages_come_from_the_registry_and_the_question_bank(built):
    out, _ = built
    index = read(out, "index.html")
    assert '<a href="notebooks/04_alpha.html">alpha</a>' in index and "如何加速训练？" in index
    assert "<td>19</td><td>gamma</td>" in index and "planned" in index
    questions = read(out, "questions.html")
    assert '<a href="notebooks/04_alpha.html#04-question">' in questions
    assert '如何优化AI大模型的训练速度？</td><td>Faster training?</td><td><a href="notebooks/04_alpha.html#04-measure">' \
        in questions
    assert '<a href="notebooks/04_alpha.html#04-question">the whole lesson</a>' in questions


def test_search_index_holds_every_heading_and_the_lessons_questions(built):
    out, _ = built
    text = read(out, "_static/search_index.js")
    entries = json.loads(text.removeprefix("window.BML_SEARCH = ").rstrip().rstrip(";"))
    urls = {entry["u"] for entry in entries}
    assert {"notebooks/04_alpha.html#1.-Measure-it", "notebooks/18_beta.html#2.-Interview-questions"} <= urls
    measured = next(e for e in entries if e["u"] == "notebooks/04_alpha.html#1.-Measure-it")
    assert measured["t"] == "1. Measure it" and "The loss is" in measured["x"]
    asked = [e for e in entries if "训练速度" in e["t"]]
    assert [e["u"] for e in asked] == ["notebooks/04_alpha.html#04-measure"]


def test_from_scratch_page_shows_the_utils_source_and_where_the_lesson_presents_it(built):
    out, _ = built
    page = read(out, "scratch.html")
    assert "<code>utils.metrics.confusion_matrix</code>" in page
    assert "confusion_matrix" in re.sub(r"<[^>]+>", "", page.split("utils.metrics.confusion_matrix</code>")[1])
    assert "local" not in re.sub(r"<[^>]+>", "", page)   # defined in the notebook: shown there, not listed


def _break(out, name, old, new):
    path = out / name
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


MISTAKES = {
    "a page is missing": (lambda out: (out / "notebooks/18_beta.html").unlink(), "missing page notebooks/18_beta.html"),
    "a script from a CDN": (lambda out: _break(out, "notebooks/04_alpha.html", "</head>",
                                               '<script src="https://cdn.example.org/x.js"></script></head>'),
                            "loads https://cdn.example.org/x.js from the network"),
    "a link to no page": (lambda out: _break(out, "index.html", 'href="notebooks/04_alpha.html"',
                                             'href="notebooks/04_alpha.ipynb"'), "which does not exist"),
    "a link to no anchor": (lambda out: _break(out, "questions.html", "#04-question", "#04-questions"),
                            "no anchor #04-questions"),
    "a label with no definition": (lambda out: _break(out, "notebooks/04_alpha.html", 'id="04-measure"', 'id="x"'),
                                   "no anchor #04-measure"),
    "a figure as a file": (lambda out: _break(out, "notebooks/04_alpha.html", f"data:image/png;base64,{PNG}",
                                              "figure.png"), "image figure.png is not embedded"),
    "a figure dropped": (lambda out: _break(out, "notebooks/04_alpha.html", f'src="data:image/png;base64,{PNG}"',
                                            'src=""'), "0 embedded figures, but its notebook has 1"),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_check_catches(mistake, built, tmp_path):
    out, pages = built
    copy = tmp_path / "site"
    shutil.copytree(out, copy)
    make, expected = MISTAKES[mistake]
    make(copy)
    problems = site.check(copy, pages)
    assert any(expected in problem for problem in problems), problems


def test_the_real_course_has_a_page_for_every_available_lesson_and_its_solution():
    hrefs = [page.href for page in site.course_pages()]
    for entry in course.available():
        assert f"notebooks/{entry.notebook.stem}.html" in hrefs
        solution = course.ROOT / "solutions" / f"{entry.notebook.stem}_lab.ipynb"
        assert (f"solutions/{solution.stem}.html" in hrefs) == solution.exists()
    assert len(hrefs) == len(set(hrefs))


def test_screenshot_without_chromium_says_how_to_install_it(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(site.shutil, "which", lambda name: None)
    assert site.screenshot(tmp_path) == 0
    assert "apt-get install chromium" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------- a broken page is refused

TRACEBACK_LINES = ["\x1b[0;31m----------------------------------------------------------------------\x1b[0m",
                   "\x1b[0;31mValueError\x1b[0m                         Traceback (most recent call last)",
                   "Cell \x1b[0;32mIn[2], line 1\x1b[0m\n\x1b[0;32m----> 1\x1b[0m \x1b[38;5;28;01massert\x1b[39;00m",
                   "\x1b[0;31mValueError\x1b[0m: the claim failed"]


def broken(banner: bool):
    """Lesson 04 as papermill leaves a run that stopped: an error output and, with ``banner``, its red banner."""
    from papermill.execute import ERROR_ANCHOR_MSG, ERROR_MESSAGE_TEMPLATE

    result = notebook("04", "Alpha", parameters={})
    result.cells[1].outputs.append(new_output("error", ename="ValueError", evalue="the claim failed",
                                              traceback=TRACEBACK_LINES))
    if banner:
        result.cells.insert(0, new_markdown_cell(ERROR_MESSAGE_TEMPLATE % 2))
        result.cells.insert(2, new_markdown_cell(ERROR_ANCHOR_MSG))
        result.metadata["papermill"]["exception"] = True
    return result


@pytest.mark.parametrize("banner", [True, False], ids=["papermill stopped", "error output only"])
def test_a_notebook_with_an_error_output_fails_the_build_and_the_check(banner, tmp_path):
    source = tmp_path / "notebooks" / "04_alpha.ipynb"
    source.parent.mkdir()
    nbformat.write(broken(banner), source)
    pages = [site.Page(source, "notebooks/04_alpha.html", "04 · alpha", "04")]
    out = tmp_path / "site"
    failures = site.build(out, executed=None, pages=pages, lessons=LESSONS[:1], table=QUESTIONS[:2],
                          log=lambda *_: None)
    assert failures == [f"04_alpha.ipynb: cell {3 if banner else 1}: ValueError: the claim failed"]
    assert "stopped with an error" in read(out, "notebooks/04_alpha.html")
    problems = site.check(out, pages)
    assert "notebooks/04_alpha.html: 1 outputs show a traceback: the notebook failed" in problems
    assert any("papermill's banner" in problem for problem in problems) == banner


def test_check_flags_a_traceback_printed_to_stderr_but_not_the_word_in_prose(built, tmp_path):
    out, pages = built
    copy = tmp_path / "site"
    shutil.copytree(out, copy)
    stderr = ('<div class="jp-RenderedText jp-OutputArea-output" data-mime-type="application/vnd.jupyter.stderr">'
              '<pre>Traceback (most recent call last):\n  File "x.py", line 1\nKeyError: 1</pre></div>')
    _break(copy, "notebooks/04_alpha.html", "<main>", "<main>" + stderr)
    _break(copy, "notebooks/18_beta.html", "<main>", "<main><p>A Python Traceback (most recent call last) reads "
           "bottom up.</p>")
    problems = site.check(copy, pages)
    assert problems == ["notebooks/04_alpha.html: 1 outputs show a traceback: the notebook failed"], problems


def test_make_site_exits_non_zero_when_a_notebook_failed(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(site, "build", lambda *args, **kwargs: ["04_alpha.ipynb: cell 1: ValueError: no"])
    assert site.main(["build", "--out", str(tmp_path)]) == 1
    assert "failed to execute: 04_alpha.ipynb: cell 1: ValueError: no" in capsys.readouterr().err


def test_an_executed_copy_with_an_error_output_is_not_fresh(tmp_path):
    source = tmp_path / "notebooks" / "04_alpha.ipynb"
    source.parent.mkdir()
    nbformat.write(notebook("04", "Alpha"), source)
    page = site.Page(source, "notebooks/04_alpha.html", "04 · alpha", "04")
    executed = tmp_path / "executed"
    copy = site.executed_copy(page, executed)
    copy.parent.mkdir(parents=True)
    nbformat.write(notebook("04", "Alpha", parameters={}), copy)
    assert site.is_fresh(page, executed)
    nbformat.write(broken(banner=False), copy)
    assert not site.is_fresh(page, executed)


# ------------------------------------------------------------------------------------------------------ the search

SEARCH_ENTRIES = [
    {"t": "3. Averaging over classes", "p": "01 · evaluation", "u": "a", "x": "Macro averaging weights classes."},
    {"t": "RAG, retrieval-augmented generation", "p": "16 · retrieval", "u": "b", "x": "A RAG pipeline retrieves."},
    {"t": "3. Quantisation", "p": "08 · compression", "u": "c", "x": "Post-training quantisation to int8."},
    {"t": "Quantization-aware training", "p": "08 · compression", "u": "d", "x": "Fake quantization in training."},
    {"t": "2. The KV cache", "p": "15 · realtime", "u": "e", "x": "Keys and values are kept; GPT-2 uses it."},
    {"t": "Interview questions", "p": "15 · realtime", "u": "f",
     "x": "1. KV cache 省了什么？ 5. 如何设计推理缓存？ / How do you design an inference cache?"},
    {"t": "如何设计推理缓存？ / An inference cache?", "p": "question bank 001, Q26", "u": "g", "x": "Answered."},
    {"t": "Behaviour under drift", "p": "12 · monitoring", "u": "h", "x": "We analysed the colour of the modelling."},
]


def search(queries, entries=SEARCH_ENTRIES):
    """{query: the urls search.js's own matching returns, in order}, run under node."""
    import subprocess

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: search.js's matching runs in the browser only")
    script = ("const api = require(process.argv[1]); const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
              "const out = {}; for (const q of input.queries) out[q] = api.search(q, input.entries).map(e => e.u);"
              "process.stdout.write(JSON.stringify(out));")
    done = subprocess.run([node, "-e", script, str(site.ASSETS / "search.js")], capture_output=True, text=True,
                          input=json.dumps({"queries": queries, "entries": entries}), timeout=60, check=True)
    return json.loads(done.stdout)


def test_search_matches_whole_words_folds_spellings_and_needs_every_term():
    found = search(["RAG", "quantization", "quantisation", "KV 缓存", "KV缓存", "kv cache", "缓存", "gpt-2",
                    "behavior analyze color modeling", "checkpoint", "averag", "rag cache", ""])
    assert found["RAG"] == ["b"], "RAG is a word: it must not match 'averaging'"
    assert found["quantization"] == found["quantisation"] == ["c", "d"]
    assert found["KV 缓存"] == found["KV缓存"] == ["f"], "both terms, in one entry: KV as a word, 缓存 anywhere"
    assert found["kv cache"] == ["e", "f"]
    assert found["缓存"] == ["g", "f"], "entries matching in their title come first"
    assert found["gpt-2"] == ["e"]
    assert found["behavior analyze color modeling"] == ["h"]
    assert found["averag"] == ["a"], "a term of four letters or more matches the start of a word"
    assert found["rag cache"] == [] and found[""] == []


def test_search_folds_british_and_american_spellings_but_not_short_words():
    import subprocess

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    pairs = [("quantisation", "quantization"), ("normalised", "normalized"), ("optimiser", "optimizer"),
             ("analyse", "analyze"), ("behaviours", "behaviors"), ("favourite", "favorite"), ("modelling", "modeling"),
             ("labelled", "labeled"), ("centre", "center"), ("catalogue", "catalog"), ("artefact", "artifact"),
             ("licence", "license")]
    kept = ["hour", "four", "your", "rise", "wise", "spelled", "filled", "size", "precision", "analysis", "noise"]
    script = ("const api = require(process.argv[1]); const words = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
              "process.stdout.write(JSON.stringify(words.map(api.fold)));")
    words = [w for pair in pairs for w in pair] + kept
    done = subprocess.run([node, "-e", script, str(site.ASSETS / "search.js")], capture_output=True, text=True,
                          input=json.dumps(words), timeout=60, check=True)
    folded = dict(zip(words, json.loads(done.stdout)))
    for british, american in pairs:
        assert folded[british] == folded[american] == american, (british, folded[british])
    for word in kept:
        assert folded[word] in (word, word.replace("ise", "ize")), (word, folded[word])
    assert folded["hour"] == "hour" and folded["four"] == "four" and folded["spelled"] == "spelled"


def test_search_index_keeps_a_sections_prose_past_its_first_lines():
    """Interview answers sit deep in their section: 缓存 in lesson 15's fifth answer, 2,000 characters down."""
    answers = "".join(f"<p>{i}. {'An answer in English. ' * 20}</p>" for i in range(5)) + "<p>5. 如何设计推理缓存？</p>"
    sections = site.outline(f'<h2 id="iq">Interview questions</h2>{answers}')
    assert len(sections[0]["text"]) > 2_000 and "推理缓存" in sections[0]["text"]
