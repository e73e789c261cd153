"""vbtjax: differentiable Virtual Brain Twins on JAX.

Import as ``import vbtjax as vbt``. Units: time in ms, lengths in mm, speeds in mm/ms (= m/s).
Arrays are laid out ``(time, state_variable, region)``.
"""

# first: sets an XLA option before anything starts JAX's backend (XLA reads XLA_FLAGS once; vbtjax/_xla_flags.py)
from . import _xla_flags as _xla_flags  # isort: skip
from . import coupling as coupling
from . import datasets as datasets
from . import delays as delays
from . import empirical as empirical
from . import features as features
from . import files as files
from . import inference as inference
from . import models as models
from . import monitors as monitors
from . import noise as noise
from . import outcomes as outcomes
from . import recordings as recordings
from . import sbi as sbi
from . import scenarios as scenarios
from . import sensors as sensors
from . import stimulus as stimulus
from . import twin as twin
from . import vep as vep
from .connectome import Connectome as Connectome
from .network import Network as Network
from .simulate import NonFiniteError as NonFiniteError
from .simulate import NonFiniteWarning as NonFiniteWarning
from .simulate import SimulationWarning as SimulationWarning
from .simulate import Solution as Solution
from .simulate import initial_history as initial_history
from .simulate import memory_estimate as memory_estimate
from .simulate import memory_limit as memory_limit
from .simulate import simulate as simulate
from .solvers import RK4 as RK4
from .solvers import Euler as Euler
from .solvers import Heun as Heun
from .sweep import SweepResult as SweepResult
from .sweep import sweep as sweep
from .sweep import sweep_grid as sweep_grid
from .sweep import sweep_random as sweep_random
from .twin import Prediction as Prediction
from .twin import Twin as Twin

__version__ = "0.1.0"
