"""Working points: for every model of :mod:`vbtjax.models`, settings that give meaningful whole-brain dynamics on
TVB's 76-region connectome (tvb-data's ``connectivity_76``, weights normalised by their maximum).

Meaningful: bounded, not at a fixed point, not collapsed, a finite and non-constant functional connectivity (FC),
and an FC that follows the structural connectivity (SC-FC correlation clearly positive, where the model allows it).
Each :class:`Preset` gathers the model parameters, the coupling function and its global strength, the conduction
speed, the noise, the integration step and what to record; ``vbtjax simulate --model NAME`` uses it by default.

    import vbtjax as vbt
    p = vbt.models.preset("JansenRit")
    conn = vbt.datasets.tvb_connectome(76).normalised(p.normalise)
    net = vbt.Network(connectome=conn, **p.network_kwargs())
    hist = p.initial_state(jax.random.split(key)[0], conn.n_regions)   # None: the model's own random state
    sol = vbt.simulate(net, t1=p.duration, dt=p.dt, history=hist, key=key,
                       monitors={"tavg": vbt.monitors.TemporalAverage(period=p.period)})

The figures in :attr:`Preset.measured` (and in the table of ``docs/gallery.md``, made by ``docs/make_gallery.py``)
were measured with exactly these settings, float32, seed 0: ``sc_fc_r`` the correlation between the upper
triangles of the FC of :attr:`Preset.signal` (after :attr:`Preset.transient`) and of the symmetrised weights,
``fc_mean`` the mean off-diagonal FC, ``fc_finite`` the fraction of finite FC entries and ``sd`` the median
standard deviation of the signal over time (its units). Units: ms, mm, mm/ms; noise ``nsig`` in (state units)²/ms.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import coupling as _coupling
from .. import noise as _noise
from . import (
    epileptor,
    epileptor_codim3,
    epileptor_rs,
    hopfield,
    jansen_rit,
    larter_breakspear,
    linear,
    montbrio,
    oscillator,
    qif_mean_field,
    stefanescu_jirsa,
    wilson_cowan,
    wong_wang,
    zerlaut,
    zerlaut_second_order,
)
from ._base import AbstractNeuralMass

__all__ = ["Preset", "PRESETS", "preset"]

_MODULES = (
    epileptor,
    epileptor_codim3,
    epileptor_rs,
    hopfield,
    jansen_rit,
    larter_breakspear,
    linear,
    montbrio,
    oscillator,
    qif_mean_field,
    stefanescu_jirsa,
    wilson_cowan,
    wong_wang,
    zerlaut,
    zerlaut_second_order,
)
ALPHA = 2.0 * math.pi * 0.01  # rad/ms: a 10 Hz angular frequency


@dataclasses.dataclass(frozen=True)
class Preset:
    """A model's working point on a whole-brain network.

    **Fields:**
    - `model`: the model's class name in :mod:`vbtjax.models` (TVB's name).
    - `params`: model parameters that differ from TVB's defaults (TVB names; time constants in ms).
    - `coupling`: the coupling function's class name in :mod:`vbtjax.coupling`; `coupling_params` its parameters,
      ``a`` being the global coupling strength.
    - `speed`: conduction speed in mm/ms (= m/s).
    - `noise`: additive noise ``nsig`` per state variable (``(n_svar,)``; 0 = deterministic variable).
    - `dt`: integration step in ms (Heun).
    - `normalise`: how the weights are normalised first (:meth:`vbtjax.Connectome.normalised`; ``"max"``: the
      strongest connection is 1).
    - `period`: sampling period of the temporal-average monitor in ms; `duration` a run's length in ms;
      `transient` ms left out of the FC (``None``: ``min(1000 ms, duration / 4)``).
    - `signal`: the state variable whose FC and traces are shown; `transform`: ``"sin"`` for a phase (the FC of
      ``sin(theta)``), else ``None``.
    - `initial_range`: ``{variable: (lo, hi)}`` replacing the model's ``state_variable_range`` for the random
      initial state, where TVB's ranges start some regions in a runaway or a stiff transient.
    - `bold_coupling`: the global strength to use instead with a BOLD monitor (``None``: the same).
    - `reference`: where the settings come from; `why`: what the dynamics are, in one or two sentences.
    - `measured`: ``sc_fc_r``, ``fc_mean``, ``fc_finite``, ``sd`` measured with these settings (see the module).
    """

    model: str
    params: Mapping[str, float]
    coupling: str
    coupling_params: Mapping[str, float]
    speed: float
    noise: tuple[float, ...]
    dt: float
    normalise: str = "max"
    period: float = 1.0
    duration: float = 4000.0
    transient: float | None = None
    signal: str | None = None
    transform: str | None = None
    initial_range: Mapping[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    bold_coupling: float | None = None
    reference: str = ""
    why: str = ""
    measured: Mapping[str, float] = dataclasses.field(default_factory=dict)

    @property
    def model_class(self) -> type[AbstractNeuralMass]:
        """The model's class."""
        return _model_class(self.model)

    @property
    def strength(self) -> float:
        """The global coupling strength ``coupling_params["a"]`` (dimensionless)."""
        return float(self.coupling_params.get("a", math.nan))

    @property
    def signal_index(self) -> int:
        """Index of :attr:`signal` in the model's state variables (0 when unset)."""
        return self.model_class.state_variables.index(self.signal) if self.signal else 0

    @property
    def fc_transient(self) -> float:
        """ms left out at the start of a run of :attr:`duration` before the FC."""
        return min(1000.0, 0.25 * self.duration) if self.transient is None else self.transient

    def make_model(self, **overrides: Any) -> AbstractNeuralMass:
        """The model with :attr:`params` (and `overrides`, TVB names)."""
        return self.model_class(**{**self.params, **overrides})

    def make_coupling(self, **overrides: Any) -> _coupling.AbstractCoupling:
        """The coupling function with :attr:`coupling_params` (and `overrides`, e.g. ``a=0.2``)."""
        return getattr(_coupling, self.coupling)(**{**self.coupling_params, **overrides})

    def make_noise(self) -> _noise.Additive | None:
        """Additive noise with :attr:`noise` per state variable, or ``None`` when all are zero."""
        nsig = np.asarray(self.noise, dtype=float)
        return _noise.Additive(nsig=jnp.asarray(nsig)) if np.any(nsig > 0) else None

    def network_kwargs(self) -> dict[str, Any]:
        """``model``, ``coupling``, ``speed`` and ``noise`` for :class:`vbtjax.Network` (add the connectome,
        normalised with :attr:`normalise`)."""
        return dict(model=self.make_model(), coupling=self.make_coupling(), speed=self.speed, noise=self.make_noise())

    def initial_state(self, key: jax.Array, n_regions: int, dtype: Any = None) -> jax.Array | None:
        """A random initial state ``(n_svar, N)`` drawn uniformly in :attr:`initial_range` (the model's ranges for
        the other variables), or ``None`` when the preset keeps the model's ranges (then pass ``history=None`` and
        the key to :func:`vbtjax.simulate`)."""
        if not self.initial_range:
            return None
        cls = self.model_class
        ranges = [self.initial_range.get(v, cls.state_variable_range[v]) for v in cls.state_variables]
        lo, hi = (np.array([r[i] for r in ranges], dtype=float) for i in (0, 1))
        dtype = dtype or jnp.result_type(float)
        u = jax.random.uniform(key, (len(lo), n_regions), dtype=dtype)
        return jnp.asarray(lo, dtype)[:, None] + u * jnp.asarray(hi - lo, dtype)[:, None]

    def describe(self) -> str:
        """One line: the settings, in the words of ``vbtjax simulate``."""
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in self.params.items()) or "TVB's defaults"
        cpl = ", ".join(f"{k}={_fmt(v)}" for k, v in self.coupling_params.items())
        return (
            f"{self.model}({params}), {self.coupling}({cpl}) on {self.normalise}-normalised weights, "
            f"{_fmt(self.speed)} mm/ms, noise nsig=({', '.join(_fmt(v) for v in self.noise)}), dt={_fmt(self.dt)} "
            f"ms, {_fmt(self.duration)} ms sampled every {_fmt(self.period)} ms"
        )


def _fmt(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _model_class(name: str) -> type[AbstractNeuralMass]:
    for module in _MODULES:
        cls = getattr(module, name, None)
        if isinstance(cls, type) and issubclass(cls, AbstractNeuralMass):
            return cls
    raise ValueError(f"no model named {name!r} in vbtjax.models")


def _epileptor_noise(extra: tuple[float, ...] = ()) -> tuple[float, ...]:
    """The noise of the Virtual Epileptic Patient's simulations on (x1, y1, z, x2, y2, g) (+ `extra`)."""
    return (1e-3, 1e-3, 0.0, 1e-4, 1e-4, 0.0, *extra)


_WC72 = dict(c_ee=16.0, c_ei=12.0, c_ie=15.0, c_ii=3.0, a_e=1.3, b_e=4.0, a_i=2.0, b_i=3.7)
_DECO2014 = dict(G=0.025)
_WW_RUN = dict(dt=0.1, period=10.0, duration=20000.0, transient=4000.0, speed=3.0)
_WW_WHY = (
    "Each region sits in the upper state of its bistable Wong-Wang dynamics, just above the coupling at "
    "which the network falls to the low state; noise drives slow (~100 ms) fluctuations that spread along the "
    "connections. Their FC is a BOLD-scale phenomenon: --monitor bold over minutes gives the literature's FC."
)

PRESETS: dict[str, Preset] = {}
"""Every model's :class:`Preset`, by class name."""


def _add(p: Preset) -> None:
    PRESETS[p.model] = p


_add(
    Preset(
        model="MontbrioPazoRoxin",
        params=dict(tau=1.0, eta=-4.6, J=14.5, Delta=0.7),
        coupling="Linear",
        coupling_params=dict(a=0.1),
        bold_coupling=0.115,
        speed=3.0,
        noise=(0.01, 0.04),
        dt=0.01,
        reference="Montbrio, Pazo & Roxin 2015 (Phys Rev X 5:021028); working point of Rabuffo et al. 2021 (eNeuro "
        "8:ENEURO.0283-21.2021)",
        why="Each region is bistable (down state r~0.06, up state r~1); noise on r kicks regions up, noise on V knocks "
        "them down, and a=0.1 puts the network at the edge of its bistable regime (0.095 falls to the all-down state, "
        "0.105 locks ~3/4 of the regions up), so regions switch and recruit their neighbours. dt=0.01 ms because tau=1 "
        "ms. With BOLD (60 s) the strength is 0.115: at 0.1 the network falls to the all-down state within 10-20 s, at "
        "0.105 it did in 1 of 6 noise realisations, at 0.11 and 0.115 in none of 6 (BOLD SC-FC r 0.33-0.47).",
        measured=dict(sc_fc_r=0.24, fc_mean=0.04, fc_finite=1.0, sd=0.11),
    )
)
_add(
    Preset(
        model="CoombesByrne",
        params=dict(eta=5.0, alpha=0.1),
        coupling="Linear",
        coupling_params=dict(a=0.35),
        speed=10.0,
        noise=(0.0, 1e-3, 0.0, 0.0),
        dt=0.01,
        initial_range={"r": (0.0, 0.5), "V": (-2.0, 0.0), "g": (1.0, 1.5), "q": (-0.1, 0.1)},
        reference="Coombes & Byrne 2019 (TVB's equations, dimensionless time read as ms); this working point was found "
        "by a parameter search on TVB-76",
        why="eta=5 with a slow synapse (alpha=0.1 /ms) gives each region a damped 30-40 Hz rhythm; noise on V excites "
        "it and the coupling, just below the onset of global synchrony (a=0.4 synchronises every region), makes "
        "connected regions fluctuate together. TVB's initial ranges (V up to 10) start a stiff excursion that needs dt "
        "<= 0.001 ms, hence the narrower initial state.",
        measured=dict(sc_fc_r=0.49, fc_mean=0.07, fc_finite=1.0, sd=0.0074),
    )
)
_add(
    Preset(
        model="Generic2dOscillator",
        params=dict(a=-0.5),
        coupling="Linear",
        coupling_params=dict(a=0.17),
        speed=4.0,
        noise=(1e-3, 0.0),
        dt=0.1,
        reference="TVB's region simulation tutorial (Generic2dOscillator a=-0.5, speed 4 mm/ms, Linear coupling); "
        "strength and noise tuned on max-normalised TVB-76",
        why="a=-0.5 puts each region just on the excitable side of its Hopf bifurcation (damped ~7-10 Hz "
        "oscillations); noise on V excites it and the coupling, near the network's oscillatory instability (0.18 "
        "starts global bursts), makes connected regions fluctuate together.",
        measured=dict(sc_fc_r=0.51, fc_mean=0.23, fc_finite=1.0, sd=0.32),
    )
)
_add(
    Preset(
        model="SupHopf",
        params=dict(a=-0.005, omega=ALPHA),
        coupling="Difference",
        coupling_params=dict(a=0.02),
        speed=10.0,
        noise=(1e-4, 1e-4),
        dt=0.1,
        initial_range={"x": (-0.5, 0.5), "y": (-0.5, 0.5)},
        reference="Deco et al. 2017 (Sci Rep 7:3095): diffusive Hopf network just below the bifurcation, here at 10 Hz",
        why="Each region is a noisy focus just below its Hopf bifurcation (a=-0.005 /ms: 200 ms damping) at 10 Hz; "
        "the diffusive coupling synchronises connected regions. TVB's initial range (+-5) is so stiff that dt must be "
        "below 0.013 ms; the narrow initial state allows dt=0.1 ms.",
        measured=dict(sc_fc_r=0.71, fc_mean=0.08, fc_finite=1.0, sd=0.02),
    )
)
_add(
    Preset(
        model="Kuramoto",
        params=dict(omega=ALPHA),
        coupling="Kuramoto",
        coupling_params=dict(a=0.002),
        speed=3.0,
        noise=(1e-3,),
        dt=0.1,
        transform="sin",
        reference="Cabral et al. 2011 (NeuroImage 57:130): delayed Kuramoto oscillators on the connectome, here at "
        "10 Hz",
        why="Identical 10 Hz phase oscillators, phase noise and weak delayed coupling (a=0.002: ~0.026 rad/ms per "
        "region): clusters of connected regions lock transiently. The phase grows without bound, so the FC and the "
        "figure use sin(theta).",
        measured=dict(sc_fc_r=0.45, fc_mean=0.32, fc_finite=1.0, sd=0.71),
    )
)
_add(
    Preset(
        model="Linear",
        params=dict(gamma=-0.1),
        coupling="Linear",
        coupling_params=dict(a=0.006),
        speed=3.0,
        noise=(1e-3,),
        dt=0.1,
        reference="linear stochastic network (Ornstein-Uhlenbeck; e.g. Galan 2008, PLoS ONE 3:e2148)",
        why="A 10 ms relaxation (gamma=-0.1 /ms) driven by noise, with the coupling at 0.9 of the stability bound "
        "|gamma| / (largest eigenvalue of the weights, 14.9 for TVB-76): the slow network modes carry the FC. A "
        "connectome with a larger eigenvalue needs a smaller a.",
        measured=dict(sc_fc_r=0.36, fc_mean=0.03, fc_finite=1.0, sd=0.1),
    )
)
_add(
    Preset(
        model="WilsonCowan",
        params=dict(**_WC72, tau_e=20.0, tau_i=20.0, P=1.25),
        coupling="Linear",
        coupling_params=dict(a=0.25),
        speed=10.0,
        noise=(1e-7, 0.0),
        dt=0.1,
        reference="Wilson & Cowan 1972 (Biophys J 12:1) limit-cycle parameters (their Fig. 4 set, P=1.25), time "
        "constants 20 ms for ~15 Hz",
        why="Each region alone oscillates (~15 Hz); the coupling pulls the network towards its focus, so that the "
        "oscillations of connected regions are damped and entrained together.",
        measured=dict(sc_fc_r=0.59, fc_mean=0.03, fc_finite=1.0, sd=0.012),
    )
)
_add(
    Preset(
        model="ReducedWongWang",
        params=dict(w=0.9, I_o=0.3),
        coupling="Linear",
        coupling_params=dict(a=0.022),
        noise=(5e-6,),
        **_WW_RUN,
        reference="Deco et al. 2013 (J Neurosci 33:11239): w=0.9, I_o=0.3",
        why=_WW_WHY,
        measured=dict(sc_fc_r=0.18, fc_mean=0.01, fc_finite=1.0, sd=0.022),
    )
)
for _name in ("ReducedWongWangExcInh", "DecoBalancedExcInh"):
    _add(
        Preset(
            model=_name,
            params=dict(_DECO2014),
            coupling="Linear",
            coupling_params=dict(a=1.0),
            noise=(5e-6, 5e-6),
            **_WW_RUN,
            reference="Deco et al. 2014 (J Neurosci 34:7886), without the feedback inhibition control; global coupling "
            "G=0.025 (the model's G; the Linear coupling passes sum_j W_ij S_e,j)",
            why="Noise-driven fluctuations of S_e around each region's intermediate state (S_e~0.38) spread along the "
            "connections; stronger G saturates the regions, weaker G decouples them. FC is a BOLD-scale phenomenon.",
            measured=dict(sc_fc_r=0.15, fc_mean=0.01, fc_finite=1.0, sd=0.026),
        )
    )
_add(
    Preset(
        model="JansenRit",
        params=dict(mu=0.15, v0=6.0),
        coupling="SigmoidalJansenRit",
        coupling_params=dict(a=3.0),
        speed=10.0,
        noise=(0.0, 0.0, 0.0, 0.0, 5e-4, 0.0),
        dt=0.1,
        reference="Jansen & Rit 1995; TVB's region_stochastic_jansen demo (v0=6 mV, SigmoidalJansenRit, noise "
        "(a A (p_max - p_min) / 2)^2 / 2 = 5.3e-4 as input noise)",
        why="Mean input mu=0.15 /ms (150 Hz) inside the alpha range of Jansen & Rit's p (0.12-0.32); input noise on y4 "
        "and the sigmoidal coupling of the source's pyramidal potential (a=3) entrain connected columns (~9 Hz). TVB's "
        "demo values (mu=0, a=10, weights unnormalised) drive max-normalised TVB-76 to a fixed point.",
        measured=dict(sc_fc_r=0.56, fc_mean=0.23, fc_finite=1.0, sd=0.025),
    )
)
_add(
    Preset(
        model="ZetterbergJansen",
        params=dict(),
        coupling="Linear",
        coupling_params=dict(a=1.0),
        speed=10.0,
        noise=(0.0, 0.0, 0.0, 1e-4) + (0.0,) * 8,
        dt=0.1,
        signal="v6",
        initial_range={
            **{v: (0.0, 0.0) for v in ("v2", "y2", "v3", "y3", "v4", "y4", "v5", "y5", "v6", "v7")},
            "v1": (-1.0, 1.0),
            "y1": (-1.0, 1.0),
        },
        reference="Zetterberg et al. 1978 with TVB's defaults",
        why="Noise on the stellate input drives each column. The long-range input passes through the sigmoid S and "
        "adds at most 2 e0 = 0.005 /ms to the 0.12 /ms drives, so the FC stays weak. v6 integrates y2 - y3, so it "
        "starts at v2 - v3 (zero): TVB's random ranges give it an arbitrary offset per region.",
        measured=dict(sc_fc_r=0.01, fc_mean=0.0, fc_finite=1.0, sd=0.23),
    )
)
_add(
    Preset(
        model="LarterBreakspear",
        params=dict(QV_max=1.0, QZ_max=1.0, d_V=0.65, d_Z=0.65, aee=0.36, ani=0.4, ane=1.0, C=0.1),
        coupling="HyperbolicTangent",
        coupling_params=dict(a=0.5, midpoint=0.0, sigma=0.65),
        speed=7.0,
        noise=(0.0, 0.0, 0.0),
        dt=0.2,
        initial_range={"V": (-0.3, 0.1), "W": (0.15, 0.3), "Z": (0.05, 0.2)},
        reference="TVB's region_deterministic_larterbreakspear demo (Breakspear et al. 2003): C=0.1, HyperbolicTangent "
        "a=QV_max/2, sigma=d_V, 7 mm/ms, dt=0.2 ms",
        why="Deterministic chaos in every region, weakly synchronised by the mean firing of its neighbours. From TVB's "
        "initial ranges about 40 % of the regions fall into a runaway (V drifting to -100s while Z grows), hence the "
        "initial state near the attractor.",
        measured=dict(sc_fc_r=0.57, fc_mean=0.01, fc_finite=1.0, sd=0.13),
    )
)
_add(
    Preset(
        model="ZerlautAdaptationFirstOrder",
        params=dict(weight_noise=1e-4),
        coupling="Linear",
        coupling_params=dict(a=0.015),
        speed=4.0,
        noise=(0.0, 0.0, 0.0, 0.0, 100.0),
        dt=0.1,
        transient=1500.0,
        initial_range={"E": (0.0, 0.005), "I": (0.0, 0.01), "W_e": (0.0, 50.0)},
        reference="di Volo et al. 2019 (Neural Comput 31:653) with TVB's defaults (b_e=60 pA: adaptation); OU drive as "
        "in Goldman et al. 2020 (weight_noise 1e-4)",
        why="Low-rate activity with strong adaptation, driven by the Ornstein-Uhlenbeck input; the coupling of the "
        "excitatory rates (kHz) spreads it. TVB's initial ranges (E up to 250 Hz) start every region in the saturated "
        "state.",
        measured=dict(sc_fc_r=0.13, fc_mean=0.04, fc_finite=1.0, sd=0.0022),
    )
)
_add(
    Preset(
        model="Epileptor",
        params=dict(x0=-1.8, Ks=-0.2, Kf=0.1),
        coupling="Difference",
        coupling_params=dict(a=1.0),
        speed=3.0,
        noise=_epileptor_noise(),
        dt=0.05,
        period=5.0,
        duration=20000.0,
        transient=5000.0,
        reference="Jirsa et al. 2014 (Brain 137:2210); permittivity coupling of Proix et al. 2014 (Ks<0), the noise "
        "of the Virtual Epileptic Patient",
        why="Every region epileptogenic (x0=-1.8): seizure-like events recur every few seconds (z's time scale, "
        "1/r ~ 3 s) and the slow permittivity coupling makes connected regions seize together; 20 s runs.",
        measured=dict(sc_fc_r=0.21, fc_mean=0.08, fc_finite=1.0, sd=0.97),
    )
)
_add(
    Preset(
        model="Epileptor2D",
        params=dict(x0=-2.2, Ks=-1.0),
        coupling="Difference",
        coupling_params=dict(a=1.0),
        speed=3.0,
        noise=(1e-3, 0.0),
        dt=0.05,
        period=5.0,
        duration=20000.0,
        transient=5000.0,
        reference="Proix et al. 2014, 2017 (the 2D Epileptor of the Virtual Epileptic Patient)",
        why="Regions below the seizure threshold (x0=-2.2) are recruited into seizures through the permittivity "
        "coupling (Ks=-1): seizures spread along the strongest connections and recur; 20 s runs.",
        measured=dict(sc_fc_r=0.53, fc_mean=0.66, fc_finite=1.0, sd=0.6),
    )
)
_add(
    Preset(
        model="EpileptorRestingState",
        params=dict(x0=-2.4, a_rs=-0.5),
        coupling="Linear",
        coupling_params=dict(a=0.17),
        speed=4.0,
        noise=_epileptor_noise((1e-3, 0.0)),
        dt=0.05,
        signal="x_rs",
        reference="Courtiol et al. 2020 (J Neurosci 40:5572): healthy Epileptors (x0=-2.4) with the resting-state "
        "oscillator set as the Generic2dOscillator preset",
        why="No seizures (x0=-2.4); the resting-state oscillator (x_rs, the LFP-like signal) is noise-driven near its "
        "Hopf bifurcation and coupled through K_rs, as the Generic2dOscillator preset.",
        measured=dict(sc_fc_r=0.66, fc_mean=0.21, fc_finite=1.0, sd=0.32),
    )
)

_QIF_TIME = "dimensionless time read as ms, as TVB does"
_add(
    Preset(
        model="Hopfield",
        params=dict(),
        coupling="Sigmoidal",
        coupling_params=dict(a=0.13, cmin=-1.0, cmax=1.0, midpoint=0.0, sigma=1.0),
        speed=3.0,
        noise=(1e-3, 0.0),
        dt=0.1,
        initial_range={"x": (-0.1, 0.1), "theta": (0.0, 0.0)},
        reference="Hopfield 1984 (PNAS 81:3088): graded-response units, tau dx/dt = -x + g(sum_j T_ij x_j), here with "
        "T the connectome and g the Sigmoidal coupling (tanh-shaped, -1 to 1)",
        why="Each unit relaxes (taux=1 ms) to the sigmoid of its input, whose slope at 0 is a/2; the zero state "
        "loses stability at a*lambda_max/2 = 1 (a~0.134 for TVB-76, largest eigenvalue 14.9). At a=0.13, just below, "
        "noise drives slow (~1 s) fluctuations of the network's leading modes, so connected units move together; "
        "above it the network locks into one of its memory states (a=0.2: every channel pinned near one value). "
        "The initial state starts near 0: from TVB's ranges (x up to 2) the relaxation dwarfs the fluctuations.",
        measured=dict(sc_fc_r=0.35, fc_mean=0.01, fc_finite=1.0, sd=0.028),
    )
)
_add(
    Preset(
        model="CoombesByrne2D",
        params=dict(eta=-2.0),
        coupling="Linear",
        coupling_params=dict(a=1.0),
        speed=10.0,
        noise=(0.0, 0.1),
        dt=0.01,
        initial_range={"r": (0.08, 0.1), "V": (-0.5, -0.3)},
        reference=f"Coombes & Byrne 2019 (Next generation neural mass models), the 2D reduction with instantaneous "
        f"synapses ({_QIF_TIME}); eta, strength and noise tuned on max-normalised TVB-76",
        why="Without synaptic dynamics each region has one strongly damped focus (eta=-2: r~0.09, ~70 Hz; no "
        "oscillation and no bistability for any eta tried, -2 to 10), so its activity is the noise on V filtered by "
        "that focus. The coupling of r raises the rates but hardly correlates the regions: the FC stays weak (SC-FC r "
        "~0.02 for strengths 0.05-2 and speeds 10-100 mm/ms); CoombesByrne (with synapses) is the model for FC. The "
        "initial state starts at the focus: from TVB's ranges the relaxation dwarfs the fluctuations.",
        measured=dict(sc_fc_r=0.02, fc_mean=0.0, fc_finite=1.0, sd=0.0075),
    )
)
_add(
    Preset(
        model="ReducedSetFitzHughNagumo",
        params=dict(),
        coupling="Difference",
        coupling_params=dict(a=0.1),
        speed=100.0,
        noise=(1e-3, 1e-3, 1e-3) + (0.0,) * 9,
        dt=0.05,
        initial_range={f"{v}_{m}": (-1.0, 1.0) for v in ("xi", "eta", "alpha", "beta") for m in range(3)},
        reference="Stefanescu & Jirsa 2008 (PLoS Comput Biol 4:e1000219) with TVB's defaults; diffusive coupling, "
        "strength, speed and noise tuned on max-normalised TVB-76",
        why="With TVB's defaults (mu=0, sigma=0.35) each region's modes oscillate (~110 Hz, small amplitude); the "
        "diffusive coupling of the xi modes (a=0.1; above ~0.3 Heun needs dt < 0.02 ms) synchronises connected "
        "regions. At this frequency delays decide the FC: at 10 and 30 mm/ms the phases scatter (SC-FC r ~0 and "
        "0.11), so the preset uses 100 mm/ms (delays up to ~2 ms); Linear coupling shifts xi to a silent state. xi_0 "
        "is shown.",
        measured=dict(sc_fc_r=0.52, fc_mean=0.62, fc_finite=1.0, sd=0.15),
    )
)
_add(
    Preset(
        model="GastSchmidtKnosche_SD",
        params=dict(),
        coupling="Linear",
        coupling_params=dict(a=0.1),
        speed=10.0,
        noise=(0.0, 1e-3, 0.0, 0.0),
        dt=0.01,
        reference=f"Gast, Schmidt & Knösche 2020 (Neural Comput 32:1615) with TVB's defaults ({_QIF_TIME}); strength "
        "and noise tuned on max-normalised TVB-76",
        why="Alone, a region at eta=-6 rests just below its bursting range (eta -5.5 to -4.6: 18-26 Hz population "
        "bursts ended by synaptic depression); the excitatory coupling of the rates (a=0.1) lifts the well-connected "
        "regions into bursting and the bursts spread along the connections. dt=0.01 ms because tau=1 ms.",
        measured=dict(sc_fc_r=0.22, fc_mean=0.63, fc_finite=1.0, sd=0.43),
    )
)
_add(
    Preset(
        model="GastSchmidtKnosche_SF",
        params=dict(eta=-3.0),
        coupling="Linear",
        coupling_params=dict(a=0.05),
        speed=10.0,
        noise=(0.0, 1e-3, 0.0, 0.0),
        dt=0.01,
        reference=f"Gast, Schmidt & Knösche 2020 (Neural Comput 32:1615), spike-frequency adaptation ({_QIF_TIME}); "
        "eta and strength tuned on max-normalised TVB-76",
        why="A region alone bursts (~20 Hz, ended by spike-frequency adaptation) for eta between -4 and 1.5; eta=-3 "
        "leaves room for the coupling's input (TVB's eta=1 plus any coupling pushes the regions above the range, "
        "into a steady high-rate state). The coupling (a=0.05) entrains connected regions' bursts.",
        measured=dict(sc_fc_r=0.3, fc_mean=0.54, fc_finite=1.0, sd=0.68),
    )
)
_add(
    Preset(
        model="DumontGutkin",
        params=dict(eta_e=4.0, J_ee=5.0, J_ie=10.0),
        coupling="Linear",
        coupling_params=dict(a=0.2),
        speed=30.0,
        noise=(0.0, 1e-3, 0.0, 0.0, 0.0, 1e-3, 0.0, 0.0),
        dt=0.01,
        reference=f"Dumont & Gutkin 2019 (PLoS Comput Biol 15:e1007019): the PING rhythm of an E-I pair of QIF mean "
        f"fields ({_QIF_TIME}); E-to-E, E-to-I weights and eta_e set for PING, strength and speed tuned on "
        "max-normalised TVB-76",
        why="Each region is a PING oscillator (~55-60 Hz): the driven excitatory population (eta_e=4) recruits the "
        "inhibitory one (J_ie=10), which silences it. TVB's defaults (J_ee=J_ie=0, eta=-5) leave both populations "
        "silent. The coupling of r_e reaches both populations (Gamma=5). Delays matter at this frequency: at 10 "
        "mm/ms (delays up to ~15 ms, a period) the phases scatter and the FC vanishes; at 30 mm/ms connected "
        "regions lock with small lags.",
        measured=dict(sc_fc_r=0.28, fc_mean=0.42, fc_finite=1.0, sd=0.064),
    )
)
_add(
    Preset(
        model="ReducedSetHindmarshRose",
        params=dict(),
        coupling="Linear",
        coupling_params=dict(a=0.01),
        speed=10.0,
        noise=(1e-3, 1e-3, 1e-3) + (0.0,) * 15,
        dt=0.05,
        initial_range={**{f"xi_{m}": (-2.0, 2.0) for m in range(3)}, **{f"alpha_{m}": (-2.0, 2.0) for m in range(3)}},
        reference="Stefanescu & Jirsa 2008 (PLoS Comput Biol 4:e1000219) with TVB's defaults; strength and noise tuned "
        "on max-normalised TVB-76",
        why="With TVB's defaults (mu=3.3, sigma=0.3) each region's modes burst (~5 Hz bursts of spikes, the slow "
        "variable tau setting the rhythm); weak coupling of the xi modes (a=0.01) and noise on them entrain connected "
        "regions' bursts. xi_0 is shown. TVB's initial ranges (xi, alpha up to 4) make Heun diverge at dt=0.05 ms.",
        measured=dict(sc_fc_r=0.53, fc_mean=0.29, fc_finite=1.0, sd=0.68),
    )
)
_CODIM3_MEASURED = {
    "EpileptorCodim3": dict(sc_fc_r=-0.02, fc_mean=0.0, fc_finite=1.0, sd=0.17),
    "EpileptorCodim3SlowMod": dict(sc_fc_r=-0.04, fc_mean=0.0, fc_finite=1.0, sd=0.042),
}
for _name in ("EpileptorCodim3", "EpileptorCodim3SlowMod"):
    _slow = _name.endswith("SlowMod")
    _add(
        Preset(
            model=_name,
            params=dict(Ks=-0.2),
            coupling="Difference",
            coupling_params=dict(a=1.0),
            speed=3.0,
            noise=(1e-3, 1e-3, 0.0) + ((0.0, 0.0) if _slow else ()),
            dt=0.05,
            reference="Saggio et al. 2017 (J Math Neurosci 7:7) with TVB's defaults (square-wave bursting: saddle-node "
            "onset, saddle-homoclinic offset); permittivity coupling through z (Ks<0) as the Epileptor preset",
            why="Each region bursts (about one burst per second at c="
            + ("0.002" if _slow else "0.001")
            + "), with noise on x and y; the slow diffusive coupling of x through z (Ks=-0.2, as the Epileptor "
            "preset) shifts connected regions' burst timing, but the FC of x stays weak (SC-FC r ~0 over 4 s and 20 "
            "s runs; Ks=-0.05 to -1 no better): the bursts' fast oscillations are not phase-locked. TVB's Ks=0 leaves "
            "the regions uncoupled."
            + (
                " The onset and offset points drift on their great circles (cA, cB ~1e-4 rad/ms): over a 4 s run the "
                "bursts change little; the transitions between classes take minutes."
                if _slow
                else ""
            ),
            measured=_CODIM3_MEASURED[_name],
        )
    )
_add(
    Preset(
        model="ZerlautAdaptationSecondOrder",
        params=dict(weight_noise=1e-4),
        coupling="Linear",
        coupling_params=dict(a=0.015),
        speed=4.0,
        noise=(0.0,) * 7 + (100.0,),
        dt=0.1,
        transient=1500.0,
        initial_range={
            "E": (0.0, 0.005),
            "I": (0.0, 0.01),
            "C_ee": (0.0, 0.0),
            "C_ei": (0.0, 0.0),
            "C_ii": (0.0, 0.0),
            "W_e": (0.0, 50.0),
        },
        reference="di Volo et al. 2019 (Neural Comput 31:653), second order, with TVB's defaults; the "
        "ZerlautAdaptationFirstOrder preset's coupling and Ornstein-Uhlenbeck drive (Goldman et al. 2020)",
        why="As the first-order preset: low-rate activity with strong adaptation (b_e=60 pA), driven by the "
        "Ornstein-Uhlenbeck input and spread by the coupling of the excitatory rates; the covariances start at 0. "
        "TVB's initial ranges (E up to 250 Hz) start every region in the saturated state.",
        measured=dict(sc_fc_r=0.07, fc_mean=0.03, fc_finite=1.0, sd=0.0023),
    )
)


def preset(name: str) -> Preset:
    """The :class:`Preset` of the model `name` (TVB's class name, e.g. ``"JansenRit"``)."""
    if name not in PRESETS:
        raise ValueError(f"no preset named {name!r}; presets: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]
