"""Method plug-ins, looked up by the name used in params.yaml (a run's ``method`` and the section it reads).

The table names each method's module and class; :func:`method_class` imports only the one asked for, so a run
stage runs (and depends on) its own method's code and nothing of the others (``reid_repro.codedeps``).
"""

from __future__ import annotations

import importlib

from reid_repro.errors import ReidReproError

METHODS = {"cluster_contrast": "ClusterContrast", "ice": "Ice", "ise": "Ise", "mixup": "Mixup",
           "supervised": "Supervised"}
# a method whose settings build on another method's section: its own keys are added to (or override) those
BASE_SECTION = {"ise": "cluster_contrast", "mixup": "cluster_contrast"}


def method_class(name: str):
    if name not in METHODS:
        raise ReidReproError(f"params.yaml: method {name!r}; expected one of {sorted(METHODS)}")
    return getattr(importlib.import_module(f"reid_repro.methods.{name}"), METHODS[name])
