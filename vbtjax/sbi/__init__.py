"""Amortised simulation-based inference: simulation budgets drawn from the same priors and selections as fitting
and NUTS (:func:`simulate_budget`, :class:`Budget`), neural posterior estimation with FlowJAX normalising flows
trained with Optax (:func:`train_npe`, :class:`NPE`, :func:`load_npe`), and calibration on held-out simulations
(:func:`calibrate`, :func:`compare_posteriors` with NUTS). ``vep_problem`` is the VEP as a problem, registered
by :mod:`vbtjax.applications.vep.sbi`.

Available as ``vbt.sbi``; FlowJAX is imported on first use of the estimator.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_NAMES = {
    "Budget": "budget",
    "simulate_budget": "budget",
    "NPE": "npe",
    "train_npe": "npe",
    "load_npe": "npe",
    "Calibration": "calibration",
    "calibrate": "calibration",
    "compare_posteriors": "calibration",
}
# problems that applications register (vbtjax.sbi.problems.register_problem), found here by their kind
_APPLICATIONS = {"vep_problem": "vep"}

__all__ = sorted([*_NAMES, *_APPLICATIONS])


def __getattr__(name: str):
    if name in _NAMES:
        value = getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _APPLICATIONS:
        from .problems import registered_problem

        return registered_problem(_APPLICATIONS[name]).make
    if name in ("budget", "npe", "calibration"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_NAMES) | set(_APPLICATIONS))


if TYPE_CHECKING:
    from .budget import Budget as Budget
    from .budget import simulate_budget as simulate_budget
    from .calibration import Calibration as Calibration
    from .calibration import calibrate as calibrate
    from .calibration import compare_posteriors as compare_posteriors
    from .npe import NPE as NPE
    from .npe import load_npe as load_npe
    from .npe import train_npe as train_npe
