"""Lab checks: ``from utils.checks import check``. Each lesson's checks live in its own module."""

from utils.checks.core import CheckFailed, Checker, check, register, registered_checks
from utils.checks import lesson01, lesson03, lesson08, lesson09, lesson10, lesson11, lesson14  # noqa: F401  (importing registers each lesson's checks)

__all__ = ["CheckFailed", "Checker", "check", "register", "registered_checks"]
