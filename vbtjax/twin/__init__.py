"""The twin layer: a personalised model as a file, and the questions asked of it.

- :mod:`~vbtjax.twin.twin`: :class:`Twin` (network, posterior, history, provenance), saved and loaded with checks,
  and :class:`Prediction`;
- :mod:`~vbtjax.twin.scenarios`: what-if transformations (resection, lesions, ageing, stimulation);
- :mod:`~vbtjax.twin.outcomes`: what a scenario's simulations are summarised by;
- :mod:`~vbtjax.twin.stimulation`: stimulation design by gradient through the simulation, robust over the posterior
  (:func:`design`).
"""

from . import outcomes as outcomes
from . import scenarios as scenarios
from .stimulation import DesignProblem as DesignProblem
from .stimulation import DesignResult as DesignResult
from .stimulation import SafetyLimits as SafetyLimits
from .stimulation import SmoothPulseTrain as SmoothPulseTrain
from .stimulation import band_power_loss as band_power_loss
from .stimulation import design as design
from .stimulation import seizure_loss as seizure_loss
from .twin import Prediction as Prediction
from .twin import Twin as Twin
from .twin import TwinFileError as TwinFileError
from .twin import get_leaf as get_leaf
from .twin import leaf_paths as leaf_paths
from .twin import set_leaves as set_leaves
