"""The lesson registry agrees with the files on disk, the README's lesson map and the lab checks."""

import importlib

import pytest

from utils import course
from utils.checks import registered_checks

README = (course.ROOT / "README.md").read_text(encoding="utf-8")


# The number of lessons comes from the registry: adding lesson 20 by CONTRIBUTING's steps must not break a test.
COUNT = len(course.LESSONS)


def test_lessons_numbered_from_00_without_gaps_with_unique_slugs():
    assert COUNT >= 1
    assert [e.number for e in course.LESSONS] == [f"{i:02d}" for i in range(COUNT)]
    assert len({e.slug for e in course.LESSONS}) == COUNT
    assert {e.status for e in course.LESSONS} <= {"available", "planned"}


@pytest.mark.parametrize("entry", course.LESSONS, ids=lambda e: e.number)
def test_status_matches_the_notebooks_on_disk(entry):
    assert entry.notebook.exists() == (entry.status == "available"), entry.notebook.name
    if entry.status == "available" and entry.lab:
        assert entry.lab_notebook.exists(), entry.lab_notebook.name
        assert any(check_id.startswith(f"{entry.number}.") for check_id in registered_checks())


def test_every_notebook_on_disk_is_registered():
    registered = {e.notebook.name for e in course.LESSONS}
    assert {p.name for p in (course.ROOT / "notebooks").glob("*.ipynb")} <= registered


def test_readme_lesson_map_is_generated_from_the_registry():
    assert course.readme_with_map(README) == README, "run `python -m utils.course build` and commit README.md"


def test_readme_map_links_available_lessons_and_marks_planned_ones(monkeypatch):
    last = course.LESSONS[-1]
    planned = course.Lesson(last.number, "next_topic", "下一课？", "What comes next?")
    monkeypatch.setattr(course, "LESSONS", course.LESSONS[:-1] + (planned,))
    table = course.readme_map()
    assert f"| {last.number} | next topic *(planned)* | What comes next? | – | – |" in table
    assert "| 06 | [tuning and ensembles](notebooks/06_tuning_ensembles.ipynb) |" in table
    assert "[lab](labs/06_tuning_ensembles_lab.ipynb)" in table
    with_lab = sum(e.status == "available" and e.lab for e in course.LESSONS)
    assert "| 00 | [start here](notebooks/00_start_here.ipynb) |" in table and table.count("[lab](") == with_lab


def test_every_available_lesson_has_its_summary_and_run_time():
    for entry in course.available():
        assert len(entry.summary) > 20 and entry.run_time.startswith("~"), entry.number


@pytest.mark.parametrize("entry", course.LESSONS, ids=lambda e: e.number)
def test_registered_modules_exist(entry):
    for module in entry.modules:
        importlib.import_module(f"utils.{module}")


def test_lesson_map_has_a_row_per_registered_lesson():
    table = course.lesson_map()
    assert len(table) == COUNT and (table["status"] == "planned").sum() == COUNT - len(course.available())
    assert list(table["lesson"]) == [e.number for e in course.LESSONS]
    with pytest.raises(ValueError, match=f"no lesson '{COUNT:02d}'; lessons are numbered 00 to {COUNT - 1:02d}"):
        course.lesson(f"{COUNT:02d}")


def test_injected_parameters_come_from_the_registry_only():
    """The suite's parameters live in the lesson's registry entry; an unregistered notebook name is an error."""
    assert course.injected_parameters(course.lesson("04").notebook)["run_compile"] is False
    assert course.injected_parameters("solutions/04_training_efficiency_lab.ipynb") == {"train_steps": 40}
    copy = course.injected_parameters("notebooks/00_start_here.ipynb")
    copy["epochs"] = 1_000
    assert course.injected_parameters("notebooks/00_start_here.ipynb") == {"epochs": 5}, "a copy, not the entry"
    course.injected_parameters("notebooks/03_overfitting.ipynb")["sizes"].append(10**6)
    assert course.injected_parameters("notebooks/03_overfitting.ipynb")["sizes"] == [50, 800], "a deep copy"
    with pytest.raises(ValueError, match="not a lesson or lab of the registry"):
        course.injected_parameters(f"notebooks/{COUNT:02d}_new_topic.ipynb")


def test_binder_installs_the_course_pins_with_cpu_torch():
    """Binder gets exactly requirements.txt (no second list to drift) with PyTorch's CPU index, then the package."""
    binder = course.ROOT / "binder"
    lines = [line.strip() for line in (binder / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines == ["--extra-index-url https://download.pytorch.org/whl/cpu", "-r ../requirements.txt"]
    post_build = binder / "postBuild"
    assert post_build.stat().st_mode & 0o111, "binder/postBuild must be executable"
    assert "pip install --no-deps -e ." in post_build.read_text()
