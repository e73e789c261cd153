"""Fitting and sampling network parameters: parameter selections with constraints, losses, :func:`fit`, and
resting-state FC personalisation (:func:`fit_fc`).

Available as ``vbt.inference``.
"""

from .fit import FitResult as FitResult
from .fit import fit as fit
from .losses import fc_correlation_loss as fc_correlation_loss
from .losses import fc_distance_loss as fc_distance_loss
from .losses import fcd_ks_loss as fcd_ks_loss
from .losses import log_psd_loss as log_psd_loss
from .losses import timeseries_loss as timeseries_loss
from .losses import weighted_sum as weighted_sum
from .params import AbstractConstraint as AbstractConstraint
from .params import Interval as Interval
from .params import Parameter as Parameter
from .params import Positive as Positive
from .params import Real as Real
from .params import Selection as Selection
from .resting_state import MODELS as MODELS
from .resting_state import FCFit as FCFit
from .resting_state import fit_fc as fit_fc
