"""Google Colab: an "Open in Colab" badge and a guarded install cell in every notebook, once the course is public.

Both need the address of the public GitHub repository, which this repository does not record yet. Until
``utils.course.REPOSITORY`` names it ("owner/name"), ``build`` removes them and ``check`` wants none; once it
does, ``build`` puts a badge under each notebook's title (the lab's under its banner, pointing at the lab) and,
before the parameters cell, a code cell that does nothing unless it runs on Colab, where it clones the course,
installs its pins and moves into it.

    python -m utils.colab build   # add (or remove) the badges and install cells in notebooks/ and solutions/
    python -m utils.colab check   # exit 1, naming the notebooks, when they disagree with utils.course.REPOSITORY

Labs get theirs from their solution through ``python -m utils.labs build``. The site leaves both out (its pages
load nothing from the network). What cannot be tested here: Colab itself (its Python, its preinstalled torch).
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

from utils import course

ROOT = course.ROOT
FOLDERS = ("notebooks", "solutions")
TAG = "colab-install"
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
BADGE = re.compile(r"\n\n\[!\[Open in Colab\]\(" + re.escape(BADGE_IMAGE) + r"\)\]\([^)\s]*\)")  # with its blank line
CLONE = "/content/big-model-labs"

INSTALL_CELL = '''\
# On Google Colab only: clone the course and install it (a few minutes, once per session). Elsewhere: nothing.
import sys

if "google.colab" in sys.modules:
    import os
    import subprocess

    if not os.path.isdir("{clone}"):
        subprocess.run(["git", "clone", "--depth", "1", "--branch", "{branch}",
                        "https://github.com/{repository}.git", "{clone}"], check=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", "{clone}/requirements.txt",
                        "-e", "{clone}"], check=True)
    sys.path.insert(0, "{clone}")
    os.chdir("{clone}/notebooks")   # the notebooks' relative paths (../build, ../deploy) start one level down'''


def _valid(repository: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9-]+/[A-Za-z0-9._-]+", repository):
        raise ValueError(f"repository {repository!r} is not a GitHub 'owner/name'; set utils.course.REPOSITORY "
                         "to the public repository, for example 'big-model-labs/course'")
    return repository


def badge(relative_path: str, repository: str, branch: str = "main") -> str:
    """The markdown badge that opens ``relative_path`` (``notebooks/04_x.ipynb``) of ``repository`` in Colab.

    >>> badge("labs/04_x_lab.ipynb", "owner/course")
    '[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/owner/course/blob/main/labs/04_x_lab.ipynb)'
    """
    url = f"https://colab.research.google.com/github/{_valid(repository)}/blob/{branch}/{relative_path}"
    return f"[![Open in Colab]({BADGE_IMAGE})]({url})"


def install_cell(repository: str, branch: str = "main") -> nbformat.NotebookNode:
    """The guarded install cell, tagged ``colab-install``."""
    source = INSTALL_CELL.format(repository=_valid(repository), branch=branch, clone=CLONE)
    return nbformat.v4.new_code_cell(source, metadata={"tags": [TAG]})


def strip_badges(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``notebook`` with its Colab badges removed, in place (a lab replaces its solution's badge by its own)."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source = BADGE.sub("", cell.source)
    return notebook


def without_colab(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``notebook`` without badges and install cell (the site's pages: they load nothing remote)."""
    clean = strip_badges(copy.deepcopy(notebook))
    clean.cells = [cell for cell in clean.cells if TAG not in cell.metadata.get("tags", [])]
    return clean


def with_colab(notebook: nbformat.NotebookNode, relative_path: str, repository: str,
               branch: str = "main") -> nbformat.NotebookNode:
    """A copy of ``notebook`` with one badge under its title line and the install cell before its first code cell."""
    out = without_colab(notebook)
    first = out.cells[0]
    if first.cell_type != "markdown":
        raise ValueError(f"{relative_path}: the first cell must be markdown (the title) to carry the Colab badge")
    title, newline, rest = first.source.partition("\n")
    first.source = f"{title}\n\n{badge(relative_path, repository, branch)}{newline}{rest}"
    code = next((i for i, cell in enumerate(out.cells) if cell.cell_type == "code"), len(out.cells))
    out.cells.insert(code, install_cell(repository, branch))
    return out


def _ids(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    for index, cell in enumerate(notebook.cells):
        cell.id = f"cell-{index:03d}"   # positional, like every committed notebook's
    return notebook


def expected(path: Path, repository: str, branch: str = "main", root: Path = ROOT) -> str:
    """The text ``path`` should hold: with badge and cell when ``repository`` is set, without them when it is empty."""
    notebook = nbformat.read(path, as_version=4)
    relative = path.relative_to(root).as_posix()
    wanted = with_colab(notebook, relative, repository, branch) if repository else without_colab(notebook)
    return nbformat.writes(_ids(wanted)) + "\n"


def _normal(path: Path) -> str:
    return nbformat.writes(_ids(nbformat.read(path, as_version=4))) + "\n"


def notebooks(root: Path = ROOT) -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (root / folder).glob("*.ipynb"))


def stale(repository: str, branch: str = "main", root: Path = ROOT) -> list[str]:
    """The notebooks whose badge and install cell disagree with ``repository``."""
    return [path.relative_to(root).as_posix() for path in notebooks(root)
            if _normal(path) != expected(path, repository, branch, root)]


def build(repository: str, branch: str = "main", root: Path = ROOT) -> list[Path]:
    """Rewrite the notebooks that disagree with ``repository``; return them."""
    changed = [root / name for name in stale(repository, branch, root)]
    for path in changed:
        path.write_text(expected(path, repository, branch, root), encoding="utf-8")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.colab", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["build", "check"])
    args = parser.parse_args(argv)
    where = f"utils.course.REPOSITORY ({course.REPOSITORY!r})"
    if args.command == "build":
        changed = build(course.REPOSITORY, course.BRANCH)
        print(f"{len(changed)} notebooks rewritten to match {where}; now run `python -m utils.labs build`")
        return 0
    problems = stale(course.REPOSITORY, course.BRANCH)
    if problems:
        print(f"Colab badges and install cells disagree with {where} in: {', '.join(problems)}; run "
              "`python -m utils.colab build` then `python -m utils.labs build`, and commit.", file=sys.stderr)
        return 1
    state = "present" if course.REPOSITORY else "absent (no public repository recorded)"
    print(f"Colab badges and install cells: {state}, in all {len(notebooks())} notebooks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
