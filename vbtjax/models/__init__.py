"""Neural mass models with TVB's names, parameters, defaults, state-variable order and coupling variables."""

from ._base import AbstractNeuralMass as AbstractNeuralMass
from .epileptor import Epileptor as Epileptor
from .epileptor import Epileptor2D as Epileptor2D
from .epileptor_rs import EpileptorRestingState as EpileptorRestingState
from .jansen_rit import JansenRit as JansenRit
from .jansen_rit import ZetterbergJansen as ZetterbergJansen
from .larter_breakspear import LarterBreakspear as LarterBreakspear
from .linear import Linear as Linear
from .montbrio import CoombesByrne as CoombesByrne
from .montbrio import MontbrioPazoRoxin as MontbrioPazoRoxin
from .oscillator import Generic2dOscillator as Generic2dOscillator
from .oscillator import Kuramoto as Kuramoto
from .oscillator import SupHopf as SupHopf
from .presets import PRESETS as PRESETS
from .presets import Preset as Preset
from .presets import preset as preset
from .wilson_cowan import WilsonCowan as WilsonCowan
from .wong_wang import DecoBalancedExcInh as DecoBalancedExcInh
from .wong_wang import ReducedWongWang as ReducedWongWang
from .wong_wang import ReducedWongWangExcInh as ReducedWongWangExcInh
from .zerlaut import ZerlautAdaptationFirstOrder as ZerlautAdaptationFirstOrder
