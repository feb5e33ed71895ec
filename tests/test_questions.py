"""The question-bank index: one row per numbered question, a real lesson for each, anchors that exist."""

import json

from utils import course, questions

# The number of questions whose lesson is still planned: it may only fall as lessons land.
MOST_PLANNED = 0


def test_one_row_per_bank_and_number_with_every_bank_complete():
    table = questions.load()
    assert not table.duplicated(["bank", "number"]).any()
    assert table.groupby("bank").size().to_dict() == questions.BANK_SIZES
    for bank, size in questions.BANK_SIZES.items():
        assert sorted(table[table.bank == bank].number) == list(range(1, size + 1))


def test_titles_are_filled_in_both_languages():
    table = questions.load()
    assert table.title_zh.str.len().min() > 3 and table.title_en.str.len().min() > 10
    assert table.title_en.str.contains(r"[\u4e00-\u9fff]").sum() == 0


def test_every_row_names_a_registered_lesson_and_planned_rows_only_fall():
    table = questions.load()
    assert set(table.lesson) <= {e.number for e in course.LESSONS}
    assert (table.status == "planned").sum() <= MOST_PLANNED


def test_every_available_lesson_has_the_anchor_the_index_links_to():
    for entry in course.available():
        if entry.number == "00":
            continue
        first = "".join(json.loads(entry.notebook.read_text(encoding="utf-8"))["cells"][0]["source"])
        assert f'<a id="{questions.anchor(entry.number)}">' in first, entry.notebook.name


def test_every_question_points_at_an_anchor_in_its_own_lesson():
    """The section is an explicit <a id> in the lesson's markdown (stable when cells move), of that lesson."""
    table = questions.load()
    assert table.section.str.fullmatch(r"\d\d-[a-z0-9-]+").all()
    assert (table.section.str[:2] == table.lesson).all()
    for entry in course.available():
        cells = json.loads(entry.notebook.read_text(encoding="utf-8"))["cells"]
        markdown = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        for section in table[table.lesson == entry.number].section.unique():
            assert f'<a id="{section}"></a>' in markdown, f"{entry.notebook.name} has no anchor {section}"


def test_most_questions_point_at_a_section_not_the_whole_lesson():
    table = questions.load()
    whole = table.section == table.lesson.map(questions.anchor)
    assert whole.sum() <= 15, table[whole][["bank", "number", "title_en"]]


def test_questions_page_is_up_to_date():
    assert questions.PAGE.read_text(encoding="utf-8") == questions.render(), \
        "run `python -m utils.questions build` and commit QUESTIONS.md"
