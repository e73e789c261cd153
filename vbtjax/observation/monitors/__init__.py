"""Monitors: what a simulation records (TVB's names)."""

from ._base import AbstractMonitor as AbstractMonitor
from ._base import Raw as Raw
from ._base import SubSample as SubSample
from ._base import TemporalAverage as TemporalAverage
from .bold import AbstractHRFKernel as AbstractHRFKernel
from .bold import BalloonWindkessel as BalloonWindkessel
from .bold import Bold as Bold
from .bold import DoubleExponential as DoubleExponential
from .bold import FirstOrderVolterra as FirstOrderVolterra
from .bold import Gamma as Gamma
from .bold import MixtureOfGammas as MixtureOfGammas
from .projection import EEG as EEG
from .projection import MEG as MEG
from .projection import SEEG as SEEG
from .projection import TVB_PROJECTION_PERIOD as TVB_PROJECTION_PERIOD
from .projection import AbstractProjection as AbstractProjection
