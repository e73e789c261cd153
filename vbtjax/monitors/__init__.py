"""Monitors: what a simulation records (TVB's names)."""

from ._base import AbstractMonitor as AbstractMonitor
from ._base import Raw as Raw
from ._base import SubSample as SubSample
from ._base import TemporalAverage as TemporalAverage
