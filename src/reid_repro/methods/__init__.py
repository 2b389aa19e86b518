"""Method plug-ins, looked up by the name used in params.yaml (a run's ``method`` and the section it reads).

A method is the module ``reid_repro.methods.<name>``; its ``METHOD`` is the plug-in class (methods/base.py).
The list of methods is the package's module list, so adding a method adds a file and edits no shared one:
every stage's code dependencies stay as they were (``reid_repro.codedeps``). :func:`method_class` imports
only the module asked for, so a run stage runs (and depends on) its own method's code and nothing of the others.
"""

from __future__ import annotations

import importlib
import pkgutil

from reid_repro.errors import ReidReproError

NOT_METHODS = ("base", "adversary")          # the plug-in contract; CANU's camera adversaries (two methods use them)


def method_names() -> tuple[str, ...]:
    """Every method: each module of this package except the contract and the parts several methods share."""
    return tuple(sorted(m.name for m in pkgutil.iter_modules(__path__)
                        if m.name not in NOT_METHODS and not m.name.startswith("_")))


def method_class(name: str):
    if name not in method_names():
        raise ReidReproError(f"params.yaml: method {name!r}; expected one of {list(method_names())}")
    return importlib.import_module(f"reid_repro.methods.{name}").METHOD


def base_section(name: str) -> str | None:
    """The section a method's settings build on (ISE: cluster_contrast; its own keys are added to those)."""
    return method_class(name).base_section
