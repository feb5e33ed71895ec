"""Colab badges and the guarded install cell: absent while no public repository is recorded, right once one is.

Colab itself cannot be reached from here: the install cell is run with a stand-in `google.colab` module and a
recording `subprocess.run`, and elsewhere (here) it must do nothing at all.
"""

import subprocess
import sys
import types

import nbformat
import pytest

from utils import colab, course, labs

REPOSITORY = "example-owner/big-model-labs"


@pytest.fixture
def small_course(tmp_path):
    """A copy of one lesson and one solution, without badges whatever REPOSITORY is, where build may rewrite files."""
    for name in ("notebooks/04_training_efficiency.ipynb", "solutions/04_training_efficiency_lab.ipynb"):
        (tmp_path / name).parent.mkdir()
        (tmp_path / name).write_text(colab.expected(course.ROOT / name, ""), encoding="utf-8")
    return tmp_path


def test_the_committed_notebooks_match_the_recorded_repository():
    assert colab.stale(course.REPOSITORY, course.BRANCH) == []
    if not course.REPOSITORY:   # today: no public address, so no badge and no install cell anywhere
        for path in colab.notebooks():
            text = path.read_text(encoding="utf-8")
            assert colab.BADGE_IMAGE not in text and colab.TAG not in text, path.name


def test_build_adds_one_badge_and_one_cell_then_removes_them_exactly(small_course):
    before = {path: path.read_text(encoding="utf-8") for path in colab.notebooks(small_course)}
    assert colab.stale("", root=small_course) == [] and len(colab.stale(REPOSITORY, root=small_course)) == 2
    assert len(colab.build(REPOSITORY, root=small_course)) == 2
    assert colab.stale(REPOSITORY, root=small_course) == [] and colab.build(REPOSITORY, root=small_course) == []
    lesson = nbformat.read(small_course / "notebooks" / "04_training_efficiency.ipynb", as_version=4)
    assert lesson.cells[0].source.startswith("# 04 · ")                   # the title stays first
    assert lesson.cells[0].source.count(colab.BADGE_IMAGE) == 1
    assert "blob/main/notebooks/04_training_efficiency.ipynb" in lesson.cells[0].source
    assert colab.TAG in lesson.cells[1].metadata.tags                     # before the parameters cell
    assert "parameters" in lesson.cells[2].metadata.tags
    assert sum(colab.TAG in c.metadata.get("tags", []) for c in lesson.cells) == 1
    assert colab.stale("", root=small_course) == ["notebooks/04_training_efficiency.ipynb",
                                                  "solutions/04_training_efficiency_lab.ipynb"]
    colab.build("", root=small_course)
    assert {path: path.read_text(encoding="utf-8") for path in colab.notebooks(small_course)} == before


def test_the_stale_check_fails_on_another_repository_or_branch(small_course):
    colab.build(REPOSITORY, root=small_course)
    assert len(colab.stale("someone-else/fork", root=small_course)) == 2
    assert len(colab.stale(REPOSITORY, branch="dev", root=small_course)) == 2


def test_the_lab_opens_itself_not_its_solution(small_course, monkeypatch):
    colab.build(REPOSITORY, root=small_course)
    monkeypatch.setattr(course, "REPOSITORY", REPOSITORY)
    solution = small_course / "solutions" / "04_training_efficiency_lab.ipynb"
    lab = labs.build_lab(nbformat.read(solution, as_version=4), solution.name)
    text = "\n".join(cell.source for cell in lab.cells)
    assert text.count(colab.BADGE_IMAGE) == 1 and "blob/main/labs/04_training_efficiency_lab.ipynb" in text
    assert "blob/main/solutions/" not in text
    assert sum(colab.TAG in c.metadata.get("tags", []) for c in lab.cells) == 1


def test_without_colab_gives_the_site_nothing_remote(small_course):
    colab.build(REPOSITORY, root=small_course)
    notebook = nbformat.read(small_course / "notebooks" / "04_training_efficiency.ipynb", as_version=4)
    clean = colab.without_colab(notebook)
    text = nbformat.writes(clean)
    assert "colab.research.google.com" not in text and "github.com" not in text
    assert len(clean.cells) == len(notebook.cells) - 1
    assert colab.BADGE_IMAGE in nbformat.writes(notebook), "the input is left as it was"


def run_install_cell(monkeypatch, on_colab, clone_exists=False):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda command, check: calls.append(command))
    monkeypatch.setattr("os.path.isdir", lambda path: clone_exists)
    monkeypatch.setattr("os.chdir", lambda path: calls.append(["chdir", path]))
    monkeypatch.setattr(sys, "path", list(sys.path))
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(colab.install_cell(REPOSITORY).source, {"__name__": "__main__"})
    return calls


def test_the_install_cell_does_nothing_off_colab(monkeypatch):
    assert run_install_cell(monkeypatch, on_colab=False) == []


def test_the_install_cell_on_colab_clones_installs_and_moves_in(monkeypatch):
    clone, pip, chdir = run_install_cell(monkeypatch, on_colab=True)
    assert clone[:2] == ["git", "clone"] and f"https://github.com/{REPOSITORY}.git" in clone and "main" in clone
    assert pip[1:4] == ["-m", "pip", "install"] and f"{colab.CLONE}/requirements.txt" in pip and colab.CLONE in pip
    assert chdir == ["chdir", f"{colab.CLONE}/notebooks"] and sys.path[0] == colab.CLONE


def test_the_install_cell_run_again_installs_nothing(monkeypatch):
    assert run_install_cell(monkeypatch, on_colab=True, clone_exists=True) == [["chdir", f"{colab.CLONE}/notebooks"]]


@pytest.mark.parametrize("bad", ["", "no-slash", "https://github.com/a/b", "a/b c", "a/b/c"])
def test_a_repository_that_is_not_owner_slash_name_is_refused(bad):
    with pytest.raises(ValueError, match="owner/name"):
        colab.badge("notebooks/00_start_here.ipynb", bad)


def test_a_notebook_without_a_markdown_title_is_refused():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    with pytest.raises(ValueError, match="first cell must be markdown"):
        colab.with_colab(notebook, "notebooks/99_x.ipynb", REPOSITORY)
