"""Resting-state personalisation: fit a network's parameters so that its simulated FC matches a subject's FC.

The model is chosen by name (:data:`MODELS`). ``"SupHopf"`` is the Hopf (Stuart–Landau) network of Deco et al.
(2017) at the time scale of BOLD: every region is a noisy supercritical Hopf oscillator just below its bifurcation
(``a < 0``) at the BOLD frequency (0.05 Hz), coupled diffusively (:class:`vbtjax.coupling.Difference`) through the
max-normalised structural weights with conduction delays ``rint(lengths / speed / dt)``; the state variable ``x``,
averaged over each repetition time, is read as the BOLD signal. With steps of ``dt`` = 40 ms a 15-minute session is
about 25 000 steps, so a gradient of the FC loss with respect to the global coupling and per-region bifurcation
parameters takes about 4 s on two CPU cores (94 regions; a 40-step fit about 3 minutes).

:func:`fit_fc` runs :func:`vbtjax.inference.fit` on ``1 - r(FC_sim, FC_emp)`` (Pearson correlation of the upper
triangles) with the noise drawn anew at every step, then evaluates the fitted network on fresh noise.

Reference: Deco, G., Kringelbach, M. L., Jirsa, V. K., & Ritter, P. (2017). The dynamics of resting fluctuations in
the brain: metastability and its dynamical cortical core. *Scientific Reports*, 7, 3095.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float

from .. import coupling as _coupling
from .. import models as _models
from .. import noise as _noise
from ..data.connectome import Connectome
from ..data.empirical import RestingStateData
from ..network import Network
from ..observation import features as _features
from ..observation import monitors as _monitors
from ..simulation.simulate import simulate
from .fitting import FitResult, fit
from .losses import fc_correlation_loss
from .params import Interval, Parameter, Selection

__all__ = ["MODELS", "FCFit", "default_dt", "fc_network", "fc_parameters", "simulated_bold", "simulated_fc", "fit_fc"]

MAX_DT = 40.0
"""Largest integration step (ms) used by default: ``dt = tr / ceil(tr / MAX_DT)``."""

TRANSIENT = 60_000.0
"""Simulated time (ms) discarded before the BOLD samples are kept."""


@dataclass(frozen=True)
class _Preset:
    """How a model is set up for resting-state FC fitting."""

    description: str
    build: Callable[[Connectome], Network]
    parameters: Callable[[Network, float], dict[str, Parameter]]  # (net, dt) -> fittable parameters by short name
    default_fit: tuple[str, ...]
    signal: Callable[[Array], Array]  # monitor output (T, n_svar, N) -> BOLD-like (T, N)


def _hopf_build(connectome: Connectome) -> Network:
    conn = connectome.without_self_connections().normalised("max")
    n = conn.n_regions
    model = _models.SupHopf(a=jnp.full((n,), -2e-5), omega=2 * math.pi * 0.05e-3)  # a: 1/ms (-0.02 /s); 0.05 Hz
    return Network(
        model=model,
        connectome=conn,
        coupling=_coupling.Difference(a=5e-4),  # 1/ms
        speed=3.0,
        noise=_noise.Additive(nsig=1e-7),  # variance per ms of each state variable
    )


def _coupling_bound(net: Network, dt: float) -> float:
    """Largest global coupling kept explicit-Heun stable: ``1.5 / (dt * rho)`` with ``rho`` the spectral radius of
    the diffusive coupling's Laplacian ``diag(sum_j W_ij) - W``."""
    w = np.asarray(net.connectome.weights, dtype=float)
    lap = np.diag(w.sum(axis=1)) - w
    rho = float(np.max(np.abs(np.linalg.eigvals(lap))))
    return 1.5 / (dt * rho) if rho > 0 else 1.0


def _hopf_parameters(net: Network, dt: float) -> dict[str, Parameter]:
    return {
        "coupling": Parameter(lambda n: n.coupling.a, Interval(0.0, _coupling_bound(net, dt)), name="coupling.a"),
        "a": Parameter(lambda n: n.model.a, Interval(-1e-4, 2e-5), name="model.a"),
        "omega": Parameter(
            lambda n: n.model.omega, Interval(2 * math.pi * 0.01e-3, 2 * math.pi * 0.1e-3), name="model.omega"
        ),
    }


MODELS: dict[str, _Preset] = {
    "SupHopf": _Preset(
        description=(
            "Hopf network at the BOLD time scale (Deco et al. 2017): SupHopf(a=-2e-5 /ms, 0.05 Hz) per region, "
            "Difference coupling of max-normalised SC, 3 mm/ms, additive noise nsig=1e-7; x averaged per TR is BOLD"
        ),
        build=_hopf_build,
        parameters=_hopf_parameters,
        default_fit=("coupling",),
        signal=lambda ys: ys[:, 0],
    ),
}
"""Models available to :func:`fit_fc` and ``vbtjax fit --model``, by name."""


def _preset(model: str) -> _Preset:
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r} for resting-state fitting; available: {', '.join(MODELS)}.")
    return MODELS[model]


def default_dt(tr: float) -> float:
    """Integration step (ms) for a repetition time ``tr`` (ms): the largest ``tr / k <= MAX_DT``."""
    return tr / math.ceil(tr / MAX_DT)


def fc_network(connectome: Connectome, model: str = "SupHopf") -> Network:
    """The starting network of ``model`` (a name in :data:`MODELS`) on ``connectome`` (weights as given; the preset
    normalises them)."""
    return _preset(model).build(connectome)


def fc_parameters(net: Network, dt: float, fit: Sequence[str] | None = None, model: str = "SupHopf") -> Selection:
    """The :class:`Selection` of the parameters named in ``fit`` (e.g. ``("coupling", "a")``; default the model's
    default), with the constraints of the preset (the coupling bounded for the stability of steps of ``dt`` ms)."""
    preset = _preset(model)
    available = preset.parameters(net, dt)
    names = preset.default_fit if fit is None else tuple(fit)
    unknown = [n for n in names if n not in available]
    if unknown or not names:
        raise ValueError(
            f"fit_fc: cannot fit {unknown or 'nothing'} for model {model!r}; choose among {', '.join(available)}."
        )
    return Selection([available[n] for n in names])


def simulated_bold(
    net: Network, tr: float, n_samples: int, dt: float, *, key: jax.Array, model: str = "SupHopf"
) -> Float[Array, "T N"]:
    """The BOLD-like signal of ``net``: ``n_samples`` samples, one per ``tr`` ms, after :data:`TRANSIENT` ms."""
    preset = _preset(model)
    n_discard = math.ceil(TRANSIENT / tr)
    t1 = (n_samples + n_discard) * tr
    hist = jnp.zeros((net.model.n_svar, net.n_regions))
    sol = simulate(net, t1, dt, history=hist, monitors=_monitors.TemporalAverage(period=tr), key=key)
    return preset.signal(sol.ys)[n_discard:]


def simulated_fc(
    net: Network, tr: float, n_samples: int, dt: float, *, key: jax.Array, model: str = "SupHopf"
) -> Float[Array, "N N"]:
    """FC (Pearson correlation between regions) of :func:`simulated_bold`."""
    return _features.fc(simulated_bold(net, tr, n_samples, dt, key=key, model=model))


class FCFit(eqx.Module):
    """The result of :func:`fit_fc`.

    **Fields:**
    - `net`: the fitted network; `result`: the :class:`~vbtjax.inference.FitResult` (losses, parameter history).
    - `params`: fitted values by name (``"coupling.a"`` in 1/ms, ``"model.a"`` per region in 1/ms, ...).
    - `fc`: ``(N, N)`` simulated FC of the fitted network, the mean over `n_eval` fresh noise realisations.
    - `r`: ``(n_eval,)`` correlation with the empirical FC of each realisation's FC (each as long as the data).
    - `r_mean_fc`: correlation of the mean simulated FC with the empirical FC.
    - `r_start`: ``(n_eval,)`` the same as `r` for the starting network.
    - `baseline`: correlation of ``log1p(SC)`` with the empirical FC, the structural baseline to beat.
    - `model`, `dt` (ms), `tr` (ms), `n_samples`: the set-up.
    """

    net: Network
    result: FitResult
    params: dict[str, Array]
    fc: Float[Array, "N N"]
    r: Float[Array, " n_eval"]
    r_mean_fc: float = eqx.field(static=True)
    r_start: Float[Array, " n_eval"] = None
    baseline: float = eqx.field(default=float("nan"), static=True)
    model: str = eqx.field(default="SupHopf", static=True)
    dt: float = eqx.field(default=40.0, static=True)
    tr: float = eqx.field(default=720.0, static=True)
    n_samples: int = eqx.field(default=0, static=True)


def _evaluate(net, data, dt, key, n_eval, model):
    emp = jnp.asarray(data.fc)
    run = eqx.filter_jit(lambda net, k: simulated_fc(net, data.tr, data.n_samples, dt, key=k, model=model))
    fcs = [run(net, k) for k in jax.random.split(key, n_eval)]  # one at a time: memory of one run
    r = jnp.stack([_features.fc_correlation(f, emp) for f in fcs])
    return jnp.mean(jnp.stack(fcs), axis=0), r


def fit_fc(
    data: RestingStateData,
    *,
    model: str = "SupHopf",
    fit_parameters: Sequence[str] | None = None,
    steps: int = 40,
    learning_rate: float = 0.1,
    dt: float | None = None,
    n_realisations: int = 1,
    n_eval: int = 4,
    key: jax.Array | None = None,
    start: Network | None = None,
    checkpoint_dir: Any = None,
    checkpoint_every: int = 5,
    resume: bool = False,
    progress: bool = True,
    callback: Callable | None = None,
) -> FCFit:
    """Fit a resting-state network to a subject's FC by gradient descent (Adam) on ``1 - r(FC_sim, FC_emp)``.

    **Arguments:**
    - `data`: the subject (:class:`~vbtjax.empirical.RestingStateData`; e.g. :func:`vbtjax.datasets.hcp_subject`).
    - `model`: a name in :data:`MODELS` (``"SupHopf"``).
    - `fit_parameters`: short names of what is fitted, e.g. ``("coupling",)`` (default) or ``("coupling", "a")``
      (global coupling and the per-region bifurcation parameter).
    - `steps`, `learning_rate`: Adam steps and step size (in the unconstrained space of the constraints).
    - `dt`: integration step in ms (default :func:`default_dt` of the TR).
    - `n_realisations`: noise realisations averaged per step; `n_eval`: realisations for the final evaluation.
    - `key`: random key (default ``jax.random.key(0)``); `start`: a starting network instead of the preset's.
    - `checkpoint_dir`, `checkpoint_every`, `resume`, `progress`, `callback`: as for :func:`vbtjax.inference.fit`.

    Each simulated series has as many samples as the data (``data.n_samples`` at ``data.tr``), so the simulated and
    empirical FC carry the same sampling noise.
    """
    if not isinstance(data, RestingStateData):
        raise TypeError(f"fit_fc: data must be a vbtjax.empirical.RestingStateData, got {type(data).__name__}.")
    dt = default_dt(data.tr) if dt is None else float(dt)
    if not (dt > 0 and abs(data.tr / dt - round(data.tr / dt)) < 1e-9):
        raise ValueError(f"fit_fc: dt={dt} ms must divide the repetition time tr={data.tr} ms.")
    net = fc_network(data.connectome, model) if start is None else start
    selection = fc_parameters(net, dt, fit_parameters, model)
    key = jax.random.key(0) if key is None else key
    k_fit, k_eval = jax.random.split(key)
    emp = jnp.asarray(data.fc)

    def loss_fn(net, k):
        return fc_correlation_loss(simulated_fc(net, data.tr, data.n_samples, dt, key=k, model=model), emp)

    res = fit(
        loss_fn,
        net,
        selection,
        optax.adam(learning_rate),
        steps=steps,
        key=k_fit,
        n_realisations=n_realisations,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=checkpoint_every,
        resume=resume,
        progress=progress,
        callback=callback,
    )
    _, r_start = _evaluate(net, data, dt, k_eval, n_eval, model)
    sim_fc, r = _evaluate(res.net, data, dt, k_eval, n_eval, model)
    return FCFit(
        net=res.net,
        result=res,
        params=res.params,
        fc=sim_fc,
        r=r,
        r_mean_fc=float(_features.fc_correlation(sim_fc, emp)),
        r_start=r_start,
        baseline=data.sc_fc_correlation(),
        model=model,
        dt=dt,
        tr=data.tr,
        n_samples=data.n_samples,
    )
