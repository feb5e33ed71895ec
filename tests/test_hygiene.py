"""Notebook conventions: names, kernel, no outputs in git, the question first, a parameters cell, test parameters."""

import re
from pathlib import Path

import nbformat
import pytest

from utils import course

ROOT = Path(__file__).resolve().parent.parent
ALL = sorted(p for folder in ("notebooks", "solutions", "labs") for p in (ROOT / folder).glob("*.ipynb"))
EXECUTED = sorted(p for folder in ("notebooks", "solutions") for p in (ROOT / folder).glob("*.ipynb"))
ids = [f"{p.parent.name}/{p.name}" for p in ALL]


@pytest.mark.parametrize("path", ALL, ids=ids)
def test_name_kernel_and_no_outputs(path):
    pattern = r"\d\d_[a-z0-9_]+_lab\.ipynb" if path.parent.name != "notebooks" else r"\d\d_[a-z0-9_]+\.ipynb"
    assert re.fullmatch(pattern, path.name), f"{path.name} does not follow the NN_topic naming"
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"
    dirty = [i for i, cell in enumerate(notebook.cells)
             if cell.cell_type == "code" and (cell.outputs or cell.execution_count)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; clear them before committing"


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_lesson_opens_with_question_goals_and_time(path):
    first = nbformat.read(path, as_version=4).cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    assert re.search(r"[\u4e00-\u9fff]", first.source), "the question in Chinese"
    for needed in ("**The question:**", "**You will be able to**", "**Time:**"):
        assert needed in first.source, f"{path.name}: first cell lacks {needed}"


@pytest.mark.parametrize("path", EXECUTED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_parameters_cell_and_declared_test_parameters(path):
    notebook = nbformat.read(path, as_version=4)
    tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"
    injected = course.injected_parameters(path)
    if path.parent.name == "notebooks":  # a lab solution runs with its defaults unless it declares smaller ones
        assert injected, f"declare {path.stem}'s test parameters in its utils/course.py entry (test_parameters=)"
    names = set(re.findall(r"^(\w+)\s*=", tagged[0].source, flags=re.M))
    unknown = set(injected) - names
    assert not unknown, f"utils/course.py's entry sets {unknown}, which {path.name}'s parameters cell lacks"


def test_every_solution_has_a_lesson():
    lessons = {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}
    for solution in (ROOT / "solutions").glob("*_lab.ipynb"):
        assert solution.stem.removesuffix("_lab") in lessons


@pytest.mark.parametrize("path", EXECUTED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_fixed_thread_count(path):
    """Threads come from seed_everything (BML_NUM_THREADS): the suite runs two kernels on two cores with one thread
    each. A notebook that sets two threads itself oversubscribes the cores; lesson 07 doing so took 216 s instead of
    about 35 s in a CI run."""
    code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    assert not re.search(r"set_num_threads\(\s*\d", code), \
        f"{path.name} fixes torch's thread count; let utils.repro.seed_everything set it"
