"""Show, in a notebook, the source of a function the course builds from scratch in ``utils``."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from IPython.display import Code


def source(function) -> "Code":
    """The source of ``function`` (or class), syntax-highlighted when displayed in Jupyter.

    Lessons call it where they present a from-scratch implementation that lives in ``utils`` (so that
    later lessons and the lab checks share one tested version), as d2l does with its ``#@save`` cells.
    """
    from IPython.display import Code

    return Code(inspect.getsource(function), language="python")
