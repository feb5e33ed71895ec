"""The lesson registry agrees with the files on disk, the README's lesson map and the lab checks."""

import importlib
import re

import pytest

from utils import course
from utils.checks import registered_checks

README = (course.ROOT / "README.md").read_text(encoding="utf-8")


def test_twenty_lessons_numbered_00_to_19_with_unique_slugs():
    assert [e.number for e in course.LESSONS] == [f"{i:02d}" for i in range(20)]
    assert len({e.slug for e in course.LESSONS}) == 20
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


@pytest.mark.parametrize("entry", course.available(), ids=lambda e: e.number)
def test_readme_maps_every_available_lesson(entry):
    row = re.search(rf"^\| {entry.number} \| \[[^\]]+\]\(notebooks/{entry.notebook.name}\) \|", README, re.M)
    assert row, f"README's lesson map lacks a row for notebooks/{entry.notebook.name}"
    if entry.lab:
        assert f"labs/{entry.lab_notebook.name}" in README


def test_readme_maps_no_planned_lesson_as_available():
    mapped = set(re.findall(r"^\| (\d\d) \| \[", README, re.M))
    assert mapped == {e.number for e in course.available()}


@pytest.mark.parametrize("entry", course.LESSONS, ids=lambda e: e.number)
def test_registered_modules_exist(entry):
    for module in entry.modules:
        importlib.import_module(f"utils.{module}")


def test_lesson_map_has_all_twenty_rows():
    table = course.lesson_map()
    assert len(table) == 20 and (table["status"] == "planned").sum() == 20 - len(course.available())
    with pytest.raises(ValueError, match="no lesson"):
        course.lesson("20")


@pytest.mark.parametrize("entry", [e for e in course.LESSONS if e.status == "planned"], ids=lambda e: e.number)
def test_readme_marks_every_planned_lesson(entry):
    assert re.search(rf"^\| {entry.number} \| [^|]*\*\(planned\)\* \|", README, re.M), \
        f"README's lesson map lacks a planned row for lesson {entry.number}"


def test_binder_installs_the_course_pins_with_cpu_torch():
    """Binder gets exactly requirements.txt (no second list to drift) with PyTorch's CPU index, then the package."""
    binder = course.ROOT / "binder"
    lines = [line.strip() for line in (binder / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines == ["--extra-index-url https://download.pytorch.org/whl/cpu", "-r ../requirements.txt"]
    post_build = binder / "postBuild"
    assert post_build.stat().st_mode & 0o111, "binder/postBuild must be executable"
    assert "pip install --no-deps -e ." in post_build.read_text()
