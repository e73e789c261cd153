"""vbtjax: differentiable Virtual Brain Twins on JAX.

Import as ``import vbtjax as vbt``. Units: time in ms, lengths in mm, speeds in mm/ms (= m/s).
Arrays are laid out ``(time, state_variable, region)``.
"""

# first: sets an XLA option before anything starts JAX's backend (XLA reads XLA_FLAGS once; vbtjax/_xla_flags.py)
from . import _xla_flags as _xla_flags  # isort: skip
from . import coupling as coupling
from . import files as files
from . import inference as inference
from . import models as models
from . import noise as noise
from . import sbi as sbi
from . import stimulus as stimulus
from . import twin as twin
from .applications import vep as vep
from .data import connectome as connectome
from .data import datasets as datasets
from .data import empirical as empirical
from .data import recordings as recordings
from .data import sensors as sensors
from .data import structural as structural
from .data import tractogram as tractogram
from .data.connectome import Connectome as Connectome
from .network import Network as Network
from .observation import features as features
from .observation import monitors as monitors
from .observation.export import OutputInfo as OutputInfo
from .simulation import delays as delays
from .simulation import solvers as solvers
from .simulation.health import Health as Health
from .simulation.health import assess as assess
from .simulation.simulate import NonFiniteError as NonFiniteError
from .simulation.simulate import NonFiniteWarning as NonFiniteWarning
from .simulation.simulate import SimulationWarning as SimulationWarning
from .simulation.simulate import Solution as Solution
from .simulation.simulate import initial_history as initial_history
from .simulation.simulate import memory_estimate as memory_estimate
from .simulation.simulate import memory_limit as memory_limit
from .simulation.simulate import simulate as simulate
from .simulation.solvers import RK4 as RK4
from .simulation.solvers import Euler as Euler
from .simulation.solvers import Heun as Heun
from .simulation.sweep import SweepResult as SweepResult
from .simulation.sweep import sweep as sweep
from .simulation.sweep import sweep_grid as sweep_grid
from .simulation.sweep import sweep_random as sweep_random
from .twin import outcomes as outcomes
from .twin import scenarios as scenarios
from .twin.stimulation import DesignResult as DesignResult
from .twin.stimulation import SafetyLimits as SafetyLimits
from .twin.stimulation import SmoothPulseTrain as SmoothPulseTrain
from .twin.stimulation import design as design
from .twin.twin import Prediction as Prediction
from .twin.twin import Twin as Twin

__version__ = "0.1.0"

# The modules' earlier paths (before the layer folders data/, simulation/, observation/, twin/, applications/)
# still import: ``import vbtjax.connectome`` is vbtjax.data.connectome, ``from vbtjax.monitors import Bold`` works,
# and twin files that name classes by these paths load. docs/architecture.md lists them; new code uses the layer
# paths. ``VBTJAX_EARLIER_PATHS=0`` in the environment leaves them unregistered.
_EARLIER_PATHS = {
    "connectome": "data.connectome",
    "datasets": "data.datasets",
    "empirical": "data.empirical",
    "recordings": "data.recordings",
    "sensors": "data.sensors",
    "structural": "data.structural",
    "tractogram": "data.tractogram",
    "delays": "simulation.delays",
    "simulate": "simulation.simulate",
    "solvers": "simulation.solvers",
    "sweep": "simulation.sweep",
    "features": "observation.features",
    "monitors": "observation.monitors",
    "monitors._base": "observation.monitors._base",
    "monitors.bold": "observation.monitors.bold",
    "monitors.projection": "observation.monitors.projection",
    "outcomes": "twin.outcomes",
    "scenarios": "twin.scenarios",
    "vep": "applications.vep",
    "vep.infer": "applications.vep.infer",
    "vep.network": "applications.vep.network",
    "vep.observation": "applications.vep.observation",
    "vep.patients": "applications.vep.patients",
    "vep.posterior": "applications.vep.posterior",
}


def _register_earlier_paths() -> bool:
    import importlib
    import os
    import sys

    if os.environ.get("VBTJAX_EARLIER_PATHS", "1") == "0":
        return False
    for old, new in _EARLIER_PATHS.items():
        sys.modules.setdefault(f"{__name__}.{old}", importlib.import_module(f"{__name__}.{new}"))
    return True


EARLIER_PATHS_REGISTERED = _register_earlier_paths()
"""Whether the earlier module paths were registered (not with ``VBTJAX_EARLIER_PATHS=0``)."""
