"""What-if scenarios: the interventions clinicians ask about, as pure transformations of a :class:`~vbtjax.Network`.

A scenario is an Equinox module called on a network, ``new_net = scenario(net)``: it returns a new network and
changes nothing in place. Every scenario is built from ``eqx.tree_at`` and ``jnp`` arithmetic on the network's leaves,
so it works on networks whose leaves are traced: inside ``jax.jit``, ``jax.grad`` and ``jax.vmap`` over posterior
samples (``jax.vmap(lambda a: simulate(scenario(eqx.tree_at(lambda n: n.coupling.a, net, a)), ...))``).

| scenario | what changes |
|---|---|
| :class:`Resect` | the regions receive and send nothing (rows and columns of ``weights`` zeroed; ``N`` kept) |
| :class:`Lesion` | the weights of tracts, or of all tracts of regions, multiplied by ``factor`` in [0, 1] |
| :class:`SlowConduction` | delays times ``factor >= 1``: ``speed / factor``, or the tracts' ``lengths * factor`` |
| :class:`AddStimulus` | a :class:`~vbtjax.stimulus.Stimulus` appended to the network's stimuli |
| :class:`Age` | global coupling ``coupling.a`` and conduction ``speed`` moved along an ageing trajectory |
| :class:`SetParameter` | a parameter (``"model.x0"``, ``"coupling.a"``, ``"speed"``, ...) set, at all or some regions |
| :class:`Compose` | several scenarios applied in order; also ``first >> second`` |

Regions are given as indices ``0 <= i < N`` or as labels of ``net.connectome.labels``; they are resolved when the
scenario is applied (static: no arrays involved). A tract is a pair ``(source, target)``; by default both directions
are affected (``directed=False``).

Numeric arguments (factors, years, rates, values) are array leaves of the scenario, checked when the scenario is
built; region and tract lists, paths and options are static.

**Delays under transformations.** A simulation of a network with traced lengths or speed lays out its delay buffer
from the delays recorded when the network was built (``net.edges``, for speeds within ``net.speed_range``). The
scenarios that change delays (:class:`SlowConduction`, :class:`Age`, :class:`SetParameter` of ``"speed"``) update
that record (and ``speed_range``) with their own, concrete, factors, so that e.g. ``SlowConduction(2.0)`` applied
inside ``jax.vmap`` over speeds simulates correctly. When a scenario's own factor is traced (vmapping over the
scenario), the record cannot follow, and the simulation checks at run time that the delays still fit.

**Outcomes of resections.** A resected region stays in the network (so shapes do not change under ``vmap``) and still
has its own dynamics, but is disconnected: whatever it does is not part of the brain any more. Outcome measures
should ignore it: :meth:`AbstractScenario.removed` gives the boolean ``(N,)`` mask of removed regions of any scenario.

**Files and command lines.** :meth:`AbstractScenario.to_dict` gives a JSON-able dict (with a ``"type"`` key) that
:func:`scenario_from_dict` reads back; stimuli are written through their fields (temporal pattern type and
parameters, regions, weight, variables). :func:`parse_scenario` reads the short text form used on the command line
(``"resect:3,17+slow:2.0"``); its grammar is in :data:`GRAMMAR`.
"""

from __future__ import annotations

from ._base import AbstractScenario as AbstractScenario
from ._base import Compose as Compose
from ._dynamical import AddStimulus as AddStimulus
from ._dynamical import SetParameter as SetParameter
from ._spec import GRAMMAR as GRAMMAR
from ._spec import parse_scenario as parse_scenario
from ._spec import scenario_from_dict as scenario_from_dict
from ._structural import AGE_COUPLING_RATE as AGE_COUPLING_RATE
from ._structural import AGE_SPEED_RATE as AGE_SPEED_RATE
from ._structural import Age as Age
from ._structural import Lesion as Lesion
from ._structural import Resect as Resect
from ._structural import SlowConduction as SlowConduction

__all__ = [
    "AbstractScenario",
    "Resect",
    "Lesion",
    "SlowConduction",
    "AddStimulus",
    "Age",
    "SetParameter",
    "Compose",
    "scenario_from_dict",
    "parse_scenario",
    "GRAMMAR",
    "AGE_COUPLING_RATE",
    "AGE_SPEED_RATE",
]

# The classes keep this package as their home (vbtjax.twin.scenarios.Resect, ...): what reprs, pickles and twin
# files name, as before the package was split into files.
for _cls in (AbstractScenario, Resect, Lesion, SlowConduction, AddStimulus, Age, SetParameter, Compose):
    _cls.__module__ = __name__
del _cls
