"""Lab checks: ``from utils.checks import check``. Each lesson's checks live in ``lessonNN.py``, found by name."""

import importlib
import pkgutil

from utils.checks.core import CheckFailed, Mistake, check, registered_checks, spec_of

for _module in pkgutil.iter_modules(__path__):
    if _module.name.startswith("lesson"):
        importlib.import_module(f"{__name__}.{_module.name}")  # importing a lesson module registers its checks

__all__ = ["CheckFailed", "Mistake", "check", "registered_checks", "spec_of"]
