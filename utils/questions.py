"""The question-bank index: every numbered question of the five banks the course is built from, and its lesson.

``data/questions.csv`` holds one row per (bank, number): the title as the bank writes it, an English version
in the course's words, the lesson that answers it, and the section: the label of the part of the lesson that
answers it (``17-registry``), an explicit ``<a id="17-registry">`` anchor in the notebook's markdown, so it does
not move when cells are added; ``NN-question`` (the lesson's first cell) where the whole lesson is the answer.
``QUESTIONS.md`` is generated from it, grouped by lesson, each question linking to its section.

    python -m utils.questions build   # write QUESTIONS.md
    python -m utils.questions check   # exit 1 when QUESTIONS.md is stale
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from utils import course

QUESTIONS_FILE = course.ROOT / "data" / "questions.csv"
PAGE = course.ROOT / "QUESTIONS.md"
BANK_SIZES = {"000": 30, "001": 40, "002": 5, "003": 30, "004": 30}


def load() -> pd.DataFrame:
    """The index as a table, with the lesson's slug and status from the registry.

    >>> table = load()
    >>> table[table.title_zh.str.contains("训练速度")][["bank", "number", "lesson"]].head(1).values.tolist()
    [['000', 2, '04']]
    """
    table = pd.read_csv(QUESTIONS_FILE, dtype={"lesson": str, "bank": str})
    table["bank"] = table["bank"].str[:3]
    entries = {e.number: e for e in course.LESSONS}
    table["slug"] = table["lesson"].map(lambda n: entries[n].slug)
    table["status"] = table["lesson"].map(lambda n: entries[n].status)
    return table


def anchor(number: str) -> str:
    """The id of the anchor in lesson ``number``'s first cell that the index links to."""
    return f"{number}-question"


def section_link(entry, section: str) -> str:
    """A markdown link from QUESTIONS.md to the section of ``entry``'s notebook that answers a question."""
    if entry.status != "available":
        return "planned"
    name = "the whole lesson" if section == anchor(entry.number) else section
    return f"[{name}](notebooks/{entry.notebook.name}#{section})"


def render() -> str:
    """QUESTIONS.md: the questions grouped by lesson, Chinese and English side by side."""
    table = load()
    lines = ["# The question index", "",
             "Every numbered question of the five interview question banks the course is built from, with the "
             "lesson that answers it. Generated from `data/questions.csv` by `python -m utils.questions build`; "
             "search it in Python with `utils.questions.load()` (lesson 00 shows how).", "",
             f"{len(table)} questions; {int((table.status == 'available').sum())} answered by a lesson available "
             f"now, {int((table.status == 'planned').sum())} by a planned one.", ""]
    for entry in course.LESSONS:
        rows = table[table.lesson == entry.number]
        if rows.empty:
            continue
        title = f"{entry.number} · {entry.topic}"
        if entry.status == "available":
            heading = f"## [{title}](notebooks/{entry.notebook.name}#{anchor(entry.number)})"
        else:
            heading = f"## {title} (planned)"
        lines += [heading, "", f"*{entry.question_zh} / {entry.question_en}*", "",
                  "| bank | # | 问题 | question | answered in |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| {r.bank} | {r.number} | {r.title_zh} | {r.title_en} | {section_link(entry, r.section)} |"
                  for r in rows.itertuples()]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.questions", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["build", "check"])
    args = parser.parse_args(argv)
    return course.write_or_check(args.command, PAGE, render(), "data/questions.csv or utils/course.py",
                                 "utils.questions")

if __name__ == "__main__":
    sys.exit(main())
