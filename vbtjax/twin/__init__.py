"""The twin layer: a personalised model as a file, and the questions asked of it.

- :mod:`~vbtjax.twin.twin`: :class:`Twin` (network, posterior, history, provenance), saved and loaded with checks,
  and :class:`Prediction`;
- :mod:`~vbtjax.twin.scenarios`: what-if transformations (resection, lesions, ageing, stimulation);
- :mod:`~vbtjax.twin.outcomes`: what a scenario's simulations are summarised by.
"""

from . import outcomes as outcomes
from . import scenarios as scenarios
from .twin import Prediction as Prediction
from .twin import Twin as Twin
from .twin import TwinFileError as TwinFileError
from .twin import get_leaf as get_leaf
from .twin import leaf_paths as leaf_paths
from .twin import set_leaves as set_leaves
