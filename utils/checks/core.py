"""The lab check framework: ``check("01.macro_prf", my_function)`` passes quietly or fails readably.

A check calls the learner's function on fixed cases and compares with a reference. A wrong
answer raises ``CheckFailed``: one short message (the case, what was expected, what came back,
one hint), shown by Jupyter without a traceback, so "Run All" stops at the first wrong answer.
"""

from __future__ import annotations

import copy
from typing import Callable

import numpy as np

_REGISTRY: dict[str, Callable[["Checker"], None]] = {}
NOT_ANSWERED_HINT = "Replace `# YOUR CODE HERE` and `raise NotImplementedError` with your answer, then rerun the cell."


class CheckFailed(AssertionError):
    """A lab answer is wrong; the message says what was expected, what came back, and a hint."""

    def __init__(self, check_id: str, message: str, hint: str | None = None):
        self.check_id, self.message, self.hint = check_id, message, hint
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"check {self.check_id} failed: {self.message}"
        return f"{text}\nHint: {self.hint}" if self.hint else text

    def _render_traceback_(self) -> list[str]:
        """IPython shows these lines instead of a traceback."""
        return [f"\x1b[31m✗ {line}\x1b[0m" if i == 0 else line for i, line in enumerate(str(self).splitlines())]


def register(check_id: str):
    """Decorator: register ``function(checker)`` as the check called ``check_id``."""
    def decorate(function):
        if check_id in _REGISTRY:
            raise ValueError(f"check {check_id!r} is registered twice")
        _REGISTRY[check_id] = function
        return function
    return decorate


def registered_checks() -> list[str]:
    """Every check id, sorted."""
    return sorted(_REGISTRY)


def format_value(value) -> str:
    """A short, readable rendering of numbers, tuples and arrays."""
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    if isinstance(value, np.integer):
        return str(int(value))
    if isinstance(value, (tuple, list)):
        inner = ", ".join(format_value(v) for v in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    if isinstance(value, np.ndarray):
        text = np.array2string(value, precision=4, threshold=12, edgeitems=3, separator=", ", max_line_width=10**6)
        return " ".join(text.split())  # one line, even for 2-D arrays
    return repr(value)


class Checker:
    """What a check uses: call the learner's function safely, then compare with expectations."""

    def __init__(self, check_id: str, candidate: Callable):
        self.check_id, self.candidate, self.cases = check_id, candidate, 0

    def fail(self, message: str, hint: str | None = None):
        raise CheckFailed(self.check_id, message, hint)

    def call(self, *args, copy_args: bool = True, **kwargs):
        """Call the learner's function, by default on copies of the arguments (so mutating them cannot hide a bug)."""
        self.cases += 1
        if copy_args:
            args, kwargs = copy.deepcopy(args), copy.deepcopy(kwargs)
        return self.run(self.candidate, *args, **kwargs)

    def run(self, function: Callable, *args, **kwargs):
        """Run any learner code (a function, or a method of an object it built), reporting its errors briefly."""
        try:
            return function(*args, **kwargs)
        except NotImplementedError:
            self.fail("not answered yet: the function still raises NotImplementedError.", NOT_ANSWERED_HINT)
        except Exception as error:  # the learner's bug, reported briefly instead of a traceback
            self.fail(f"your code raised {type(error).__name__}: {error}",
                      "Run it by hand on the example call above the check to see where it breaks.")

    def expect_close(self, got, expected, *, case: str, hint: str, atol: float = 1e-9,
                     diagnose: tuple[tuple[object, str], ...] = ()):
        """Fail unless ``got`` equals ``expected`` within ``atol``; a known wrong value gets its own hint."""
        expected_array = np.asarray(expected, dtype=float)
        try:
            got_array = np.asarray(got, dtype=float)
        except (TypeError, ValueError):
            self.fail(f"for {case} expected {format_value(expected)}, got {format_value(got)} "
                      f"(a {type(got).__name__}, not numbers).", hint)
        if got_array.shape != expected_array.shape:
            self.fail(f"for {case} expected shape {expected_array.shape} like {format_value(expected)}, "
                      f"got shape {got_array.shape}: {format_value(got)}.", hint)
        if np.allclose(got_array, expected_array, rtol=0, atol=atol, equal_nan=False):
            return
        for wrong_value, wrong_hint in diagnose:
            if np.allclose(got_array, np.asarray(wrong_value, dtype=float), rtol=0, atol=atol):
                hint = wrong_hint
                break
        self.fail(f"for {case}\n  expected {format_value(expected)}\n  got      {format_value(got)}", hint)


def check(check_id: str, candidate: Callable) -> None:
    """Run the lab check ``check_id`` on ``candidate``: print a success line, or raise ``CheckFailed``.

    >>> check("01.roc_auc", lambda y, s: 0.5)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    utils.checks.core.CheckFailed: check 01.roc_auc failed: ...
    """
    if check_id not in _REGISTRY:
        raise ValueError(f"unknown check {check_id!r}; known checks: {', '.join(registered_checks())}")
    if not callable(candidate):
        raise CheckFailed(check_id, f"expected a function, got a {type(candidate).__name__}.",
                          "Pass the function itself, without calling it: check(id, my_function).")
    checker = Checker(check_id, candidate)
    _REGISTRY[check_id](checker)
    print(f"✓ {check_id} passed ({checker.cases} case{'' if checker.cases == 1 else 's'})")
