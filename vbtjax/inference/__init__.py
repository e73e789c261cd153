"""Fitting and sampling network parameters: parameter selections with constraints, losses, :func:`fit`,
resting-state FC personalisation (:func:`fit_fc`), posteriors (:class:`Posterior`) sampled with NUTS (BlackJAX:
:func:`nuts`; NumPyro: :func:`numpyro_nuts`), MCMC diagnostics (:mod:`~vbtjax.inference.diagnostics`) and
simulation-based calibration (:func:`sbc`), posterior predictive checks (:func:`predictive_check`), adaptive
tempered SMC with the model evidence (:func:`smc`) and model
comparison by PSIS-LOO, WAIC or the evidence (:func:`compare`).

Available as ``vbt.inference``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Names are loaded on first use (PEP 562), so that ``import vbtjax`` does not import BlackJAX, Optax or SciPy,
# which only fitting and sampling need (about 85 MB of resident memory and a second of start-up).
_NAMES = {
    "compare": "comparison",
    "format_compare": "comparison",
    "log_likelihood_draws": "comparison",
    "loo": "comparison",
    "waic": "comparison",
    "ess_bulk": "diagnostics",
    "ess_tail": "diagnostics",
    "split_rhat": "diagnostics",
    "summary": "diagnostics",
    "to_inference_data": "diagnostics",
    "FitResult": "fitting",
    "ResumeError": "fitting",
    "Resumed": "fitting",
    "check_resume": "fitting",
    "fit": "fitting",
    "fc_correlation_loss": "losses",
    "fc_distance_loss": "losses",
    "fcd_ks_loss": "losses",
    "log_psd_loss": "losses",
    "quantile_ks_loss": "losses",
    "sample_quantiles": "losses",
    "timeseries_loss": "losses",
    "weighted_sum": "losses",
    "numpyro_model": "numpyro_path",
    "numpyro_nuts": "numpyro_path",
    "NutsResult": "nuts_sampler",
    "nuts": "nuts_sampler",
    "warmup_schedule": "nuts_sampler",
    "AbstractConstraint": "params",
    "Affine": "params",
    "Interval": "params",
    "Parameter": "params",
    "Positive": "params",
    "Real": "params",
    "Selection": "params",
    "PPCResult": "ppc",
    "predictive_check": "ppc",
    "Latent": "posterior",
    "Posterior": "posterior",
    "MODELS": "resting_state",
    "FCFit": "resting_state",
    "FCScore": "resting_state",
    "HOLDOUTS": "resting_state",
    "fit_fc": "resting_state",
    "heterogeneity_basis": "resting_state",
    "score_fc": "resting_state",
    "SBCResult": "calibration",
    "rank_pvalues": "calibration",
    "sbc": "calibration",
    "sbc_ranks": "calibration",
    "SMCResult": "tempering",
    "smc": "tempering",
}
_MODULES = (
    "calibration",
    "comparison",
    "diagnostics",
    "fitting",
    "gibbs",
    "losses",
    "nuts_sampler",
    "numpyro_path",
    "params",
    "posterior",
    "ppc",
    "resting_state",
    "tempering",
)

__all__ = sorted(_NAMES) + [m for m in _MODULES if m not in _NAMES]


def __getattr__(name: str):
    if name in _NAMES:
        value = getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    elif name in _MODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # static analysers and documentation tools see the eager imports
    from . import diagnostics as diagnostics
    from .calibration import SBCResult as SBCResult
    from .calibration import rank_pvalues as rank_pvalues
    from .calibration import sbc as sbc
    from .calibration import sbc_ranks as sbc_ranks
    from .comparison import compare as compare
    from .comparison import format_compare as format_compare
    from .comparison import log_likelihood_draws as log_likelihood_draws
    from .comparison import loo as loo
    from .comparison import waic as waic
    from .diagnostics import ess_bulk as ess_bulk
    from .diagnostics import ess_tail as ess_tail
    from .diagnostics import split_rhat as split_rhat
    from .diagnostics import summary as summary
    from .diagnostics import to_inference_data as to_inference_data
    from .fitting import FitResult as FitResult
    from .fitting import fit as fit
    from .losses import fc_correlation_loss as fc_correlation_loss
    from .losses import fc_distance_loss as fc_distance_loss
    from .losses import fcd_ks_loss as fcd_ks_loss
    from .losses import log_psd_loss as log_psd_loss
    from .losses import quantile_ks_loss as quantile_ks_loss
    from .losses import sample_quantiles as sample_quantiles
    from .losses import timeseries_loss as timeseries_loss
    from .losses import weighted_sum as weighted_sum
    from .numpyro_path import numpyro_model as numpyro_model
    from .numpyro_path import numpyro_nuts as numpyro_nuts
    from .nuts_sampler import NutsResult as NutsResult
    from .nuts_sampler import nuts as nuts
    from .nuts_sampler import warmup_schedule as warmup_schedule
    from .params import AbstractConstraint as AbstractConstraint
    from .params import Affine as Affine
    from .params import Interval as Interval
    from .params import Parameter as Parameter
    from .params import Positive as Positive
    from .params import Real as Real
    from .params import Selection as Selection
    from .posterior import Latent as Latent
    from .posterior import Posterior as Posterior
    from .resting_state import HOLDOUTS as HOLDOUTS
    from .resting_state import MODELS as MODELS
    from .resting_state import FCFit as FCFit
    from .resting_state import FCScore as FCScore
    from .resting_state import fit_fc as fit_fc
    from .resting_state import heterogeneity_basis as heterogeneity_basis
    from .resting_state import score_fc as score_fc
    from .tempering import SMCResult as SMCResult
    from .tempering import smc as smc
