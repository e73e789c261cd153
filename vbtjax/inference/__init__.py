"""Fitting and sampling network parameters: parameter selections with constraints, losses, :func:`fit`,
resting-state FC personalisation (:func:`fit_fc`), posteriors (:class:`Posterior`) sampled with NUTS (BlackJAX:
:func:`nuts`; NumPyro: :func:`numpyro_nuts`), MCMC diagnostics (:mod:`~vbtjax.inference.diagnostics`) and
simulation-based calibration (:func:`sbc`).

Available as ``vbt.inference``.
"""

from . import diagnostics as diagnostics
from .diagnostics import ess_bulk as ess_bulk
from .diagnostics import ess_tail as ess_tail
from .diagnostics import split_rhat as split_rhat
from .diagnostics import summary as summary
from .diagnostics import to_inference_data as to_inference_data
from .fit import FitResult as FitResult
from .fit import fit as fit
from .losses import fc_correlation_loss as fc_correlation_loss
from .losses import fc_distance_loss as fc_distance_loss
from .losses import fcd_ks_loss as fcd_ks_loss
from .losses import log_psd_loss as log_psd_loss
from .losses import timeseries_loss as timeseries_loss
from .losses import weighted_sum as weighted_sum
from .numpyro_path import numpyro_model as numpyro_model
from .numpyro_path import numpyro_nuts as numpyro_nuts
from .nuts import NutsResult as NutsResult
from .nuts import nuts as nuts
from .nuts import warmup_schedule as warmup_schedule
from .params import AbstractConstraint as AbstractConstraint
from .params import Affine as Affine
from .params import Interval as Interval
from .params import Parameter as Parameter
from .params import Positive as Positive
from .params import Real as Real
from .params import Selection as Selection
from .posterior import Latent as Latent
from .posterior import Posterior as Posterior
from .resting_state import MODELS as MODELS
from .resting_state import FCFit as FCFit
from .resting_state import fit_fc as fit_fc
from .sbc import SBCResult as SBCResult
from .sbc import rank_pvalues as rank_pvalues
from .sbc import sbc as sbc
from .sbc import sbc_ranks as sbc_ranks
