"""Resting-state personalisation: fit a network's parameters so that its simulated FC matches a subject's FC.

The model is chosen by name (:data:`MODELS`). ``"SupHopf"`` is the Hopf (Stuart–Landau) network of Deco et al.
(2017) at the time scale of BOLD: every region is a noisy supercritical Hopf oscillator just below its bifurcation
(``a < 0``) at the BOLD frequency (0.05 Hz), coupled diffusively (:class:`vbtjax.coupling.Difference`) through the
max-normalised structural weights with conduction delays ``rint(lengths / speed / dt)``; the state variable ``x``,
averaged over each repetition time, is read as the BOLD signal. With steps of ``dt`` = 40 ms a 15-minute session is
about 25 000 steps, so a gradient of the FC loss with respect to the global coupling and per-region bifurcation
parameters takes about 4 s on two CPU cores (94 regions; a 40-step fit about 3 minutes).

:func:`fit_fc` runs :func:`vbtjax.inference.fit` on ``1 - r(FC_sim, FC_emp)`` (Pearson correlation of the upper
triangles) with the noise drawn anew at every step, then evaluates the fitted network on fresh noise
(:func:`score_fc`: FC r, FCD KS distance, the log-SC baseline). With ``holdout="half"`` it fits on the first half of
the BOLD recording and scores on the second as well, beside the test-retest ceiling r(FC half 1, FC half 2).

``heterogeneity=`` makes the bifurcation parameter a map over the regions, ``a_i = c_0 + sum_k c_k z_k(i)``, on a basis
of a few maps (:func:`heterogeneity_basis`: node strength, the smoothest eigenmodes of the SC's Laplacian, or maps
given per region), its coefficients fitted with the coupling; ``fcd_weight=`` adds a smooth KS distance between the
simulated and the empirical FCD values to the loss. ``vbtjax fit`` fits a map on 10 eigenmodes by default.

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
from jaxtyping import Array, ArrayLike, Float

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
from .losses import fc_correlation_loss, quantile_ks_loss, sample_quantiles
from .params import Interval, Parameter, Selection

__all__ = [
    "MODELS",
    "HOLDOUTS",
    "FCFit",
    "FCScore",
    "default_dt",
    "fc_network",
    "fc_parameters",
    "fcd_sample",
    "fcd_windows",
    "heterogeneity_basis",
    "score_fc",
    "simulated_bold",
    "simulated_fc",
    "fit_fc",
]

MAX_DT = 40.0
"""Largest integration step (ms) used by default: ``dt = tr / ceil(tr / MAX_DT)``."""

TRANSIENT = 60_000.0
"""Simulated time (ms) discarded before the BOLD samples are kept."""

FCD_WINDOW = 60_000.0
"""Default FCD window (ms): 60 s, as in Deco et al. (2017) and Hansen et al. (2015)."""

FCD_STEP = 2_000.0
"""Default shift between FCD windows (ms): 2 s."""

HOLDOUTS = ("none", "half")
"""How :func:`fit_fc` uses the recording: ``"none"`` fits and scores on all of it; ``"half"`` fits on the first half
and also scores on the second."""


@dataclass(frozen=True)
class _Preset:
    """How a model is set up for resting-state FC fitting."""

    description: str
    build: Callable[[Connectome], Network]
    parameters: Callable[..., dict[str, Parameter]]  # (net, dt, basis) -> fittable parameters by short name
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


A_RANGE = (-1e-4, 2e-5)
"""Interval of the Hopf bifurcation parameter ``a`` (1/ms) per region; with a parameter map, of its mean."""

A_MAP_RANGE = 1e-3
"""Bound (1/ms) of each coefficient of a heterogeneity map of ``a`` (the maps have unit standard deviation): about
the global coupling times a node's strength, the scale at which ``a`` shapes the FC (the linearised network's FC is
that of ``(G L - diag(a))^-1``, with ``L`` the Laplacian of the SC)."""

A_MAP_MEAN_RANGE = (-1e-3, 2e-5)
"""Interval of the mean of ``a`` (1/ms) with a heterogeneity map."""


def _hopf_parameters(net: Network, dt: float, basis: Array | None = None) -> dict[str, Parameter]:
    if basis is None:
        a = Parameter(lambda n: n.model.a, Interval(*A_RANGE), name="model.a")
    else:
        k = basis.shape[1] - 1
        lo = jnp.asarray([A_MAP_MEAN_RANGE[0]] + [-A_MAP_RANGE] * k)
        hi = jnp.asarray([A_MAP_MEAN_RANGE[1]] + [A_MAP_RANGE] * k)
        a = Parameter(lambda n: n.model.a, Interval(lo, hi), name="model.a.coef", basis=basis)
    return {
        "coupling": Parameter(lambda n: n.coupling.a, Interval(0.0, _coupling_bound(net, dt)), name="coupling.a"),
        "a": a,
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


def heterogeneity_basis(connectome: Connectome, maps: str | ArrayLike | None) -> np.ndarray | None:
    """The basis ``(N, 1 + K)`` of a heterogeneity map: a column of ones (the mean) and ``K`` maps, each shifted to
    zero mean and scaled to unit standard deviation, so that a fitted parameter is ``c_0 + sum_k c_k z_k`` per region.

    ``maps`` is ``None`` or ``"none"`` (no map: None), ``"strength"`` (the node strength ``sum_j W_ij`` of the
    max-normalised SC without self connections), ``"eigenmodes:K"`` (the first ``K`` non-constant eigenmodes, the
    smoothest, of the Laplacian ``diag(sum_j W_ij) - W`` of the symmetrised SC: 1 <= K < N), or user maps, one value
    per region: an array ``(N,)`` or ``(N, K)`` (e.g. T1w/T2w myelin, gene expression)."""
    if maps is None or (isinstance(maps, str) and maps == "none"):
        return None
    n = connectome.n_regions
    w = np.asarray(connectome.without_self_connections().normalised("max").weights, np.float64)
    if isinstance(maps, str):
        kind, _, arg = maps.partition(":")
        if kind == "strength" and not arg:
            z = w.sum(axis=1)[:, None]
        elif kind == "eigenmodes" and arg.isdigit() and 1 <= int(arg) < n:
            ws = 0.5 * (w + w.T)
            _, modes = np.linalg.eigh(np.diag(ws.sum(axis=1)) - ws)  # ascending: the constant mode first
            z = modes[:, 1 : int(arg) + 1]
        else:
            raise ValueError(
                f"heterogeneity: {maps!r} is not a map; use 'strength', 'eigenmodes:K' with 1 <= K < {n} "
                "(e.g. 'eigenmodes:10'), or an array of one value per region (N,) or (N, K)."
            )
    else:
        z = np.asarray(maps, np.float64)
        z = z[:, None] if z.ndim == 1 else z
        if z.ndim != 2 or z.shape[0] != n or z.shape[1] < 1:
            raise ValueError(
                f"heterogeneity: maps must hold one value per region, shape ({n},) or ({n}, K), got {np.shape(maps)}."
            )
        if not np.all(np.isfinite(z)):
            raise ValueError("heterogeneity: the maps contain NaN or inf; give a finite value for every region.")
    sd = z.std(axis=0)
    flat = np.flatnonzero(sd <= 1e-12 * (np.abs(z).max(axis=0) + 1e-300))
    if flat.size:
        raise ValueError(
            f"heterogeneity: map(s) {flat.tolist()} are constant across regions; a constant map adds nothing to the "
            "mean (drop it)."
        )
    basis = np.concatenate([np.ones((n, 1)), (z - z.mean(axis=0)) / sd], axis=1)
    if np.linalg.matrix_rank(basis) < basis.shape[1]:
        raise ValueError("heterogeneity: the maps are linearly dependent (on each other or a constant); drop one.")
    return basis


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


def fc_parameters(
    net: Network,
    dt: float,
    fit: Sequence[str] | None = None,
    model: str = "SupHopf",
    basis: ArrayLike | None = None,
) -> Selection:
    """The :class:`Selection` of the parameters named in ``fit`` (e.g. ``("coupling", "a")``; default the model's
    default), with the constraints of the preset (the coupling bounded for the stability of steps of ``dt`` ms).
    With a heterogeneity ``basis`` (:func:`heterogeneity_basis`), ``"a"`` is a parameter map: its coefficients
    ``"model.a.coef"`` (1/ms; the mean in :data:`A_MAP_MEAN_RANGE`, each map's in ``+-A_MAP_RANGE``), fitted by
    default."""
    preset = _preset(model)
    if basis is not None:
        basis = jnp.asarray(basis, dtype=jnp.result_type(float))
        if basis.ndim != 2 or basis.shape[0] != net.n_regions:
            raise ValueError(f"fc_parameters: basis must be (N={net.n_regions}, K), got shape {basis.shape}.")
        net = _per_region_a(net)
    available = preset.parameters(net, dt, basis)
    names = preset.default_fit if fit is None else tuple(fit)
    if basis is not None and fit is None:
        names = (*names, "a") if "a" not in names else names
    if basis is not None and "a" not in names:
        raise ValueError(f"fit_fc: a heterogeneity map sets 'a'; add it to the fitted parameters ({names}).")
    unknown = [n for n in names if n not in available]
    if unknown or not names:
        raise ValueError(
            f"fit_fc: cannot fit {unknown or 'nothing'} for model {model!r}; choose among {', '.join(available)}."
        )
    return Selection([available[n] for n in names])


def _per_region_a(net: Network) -> Network:
    """``net`` with a per-region ``model.a`` (a map needs one value per region)."""
    a = jnp.asarray(net.model.a)
    return (
        net
        if a.shape == (net.n_regions,)
        else eqx.tree_at(lambda n: n.model.a, net, jnp.broadcast_to(a, (net.n_regions,)))
    )


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


def fcd_windows(tr: float, window: float = FCD_WINDOW, step: float = FCD_STEP) -> tuple[int, int]:
    """FCD window and step in volumes for a repetition time ``tr`` (ms): ``window`` and ``step`` (ms) rounded to
    whole volumes (at least 2 and 1)."""
    if not (window > 0 and step > 0):
        raise ValueError(f"fcd_window, fcd_step: must be positive times in ms, got {window!r} and {step!r}.")
    return max(2, round(window / tr)), max(1, round(step / tr))


def fcd_sample(bold: Float[Array, "T N"], window: int, step: int) -> Float[Array, " P"] | None:
    """The FCD values of ``bold`` compared between simulation and data: the upper triangle of
    :func:`~vbtjax.features.fcd` over pairs of windows that do not overlap (``k = ceil(window / step)``), or None when
    the series has no such pair."""
    k = math.ceil(window / step)
    if bold.shape[0] < window or (bold.shape[0] - window) // step + 1 <= k:
        return None
    return _features.fcd_values(_features.fcd(bold, window, step), k=k)


class FCScore(eqx.Module):
    """How well a network's simulated BOLD matches one recording (:func:`score_fc`).

    **Fields:**
    - `r`: ``(n_eval,)`` FC correlation (upper triangles) of each fresh noise realisation, each as long as the data.
    - `r_mean_fc`: correlation of the mean simulated FC with the data's FC; `fc`: that mean ``(N, N)``.
    - `fcd_ks`: ``(n_eval,)`` exact two-sample KS distance between the simulated and the empirical FCD values
      (windows of `fcd_window` ms shifted by `fcd_step` ms, non-overlapping pairs); NaN without a BOLD series or
      when the recording is shorter than about two windows.
    - `baseline`: r(log1p(SC), FC of the data), the structural baseline to beat.
    - `n_samples`: volumes of the recording scored.
    """

    r: Float[Array, " n_eval"]
    fc: Float[Array, "N N"]
    fcd_ks: Float[Array, " n_eval"]
    r_mean_fc: float = eqx.field(static=True)
    baseline: float = eqx.field(static=True)
    n_samples: int = eqx.field(static=True)
    fcd_window: float = eqx.field(default=60_000.0, static=True)  # FCD_WINDOW, written out for the API page
    fcd_step: float = eqx.field(default=2_000.0, static=True)  # FCD_STEP


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
    - `train`: the :class:`FCScore` of the fitted network on the data it was fitted to (`r`, `fc`, `r_mean_fc` and
      `baseline` above repeat its fields), with the FCD KS distance `train.fcd_ks`.
    - `holdout`: ``"none"`` or ``"half"``; `test`: with ``"half"``, the :class:`FCScore` on the held-out second half
      (fresh realisations as long as it), else None; `whole`: with ``"half"``, the score on the whole recording
      (realisations as long as it; half of it held out), comparable with a fit of the whole recording.
    - `ceiling`: the test-retest ceiling r(FC of the first half, FC of the second half) of the recording: what a
      model of one half can hope for on the other (NaN without a BOLD series).
    - `selection`: the fitted :class:`~vbtjax.inference.Selection` (for ``Twin.from_fit(result, selection)``);
      `basis`: ``(N, 1 + K)`` the heterogeneity basis of ``a`` (:func:`heterogeneity_basis`) or None;
      `fcd_weight`: the weight of the FCD term of the loss.
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
    train: FCScore | None = None
    test: FCScore | None = None
    whole: FCScore | None = None
    holdout: str = eqx.field(default="none", static=True)
    ceiling: float = eqx.field(default=float("nan"), static=True)
    selection: Selection | None = None
    basis: Float[Array, "N K"] | None = None
    fcd_weight: float = eqx.field(default=0.0, static=True)


_simulated_bold_jit = eqx.filter_jit(simulated_bold)  # Python numbers and strings static: one compilation per set-up


def _simulate_eval(net, tr, n_samples, dt, key, n_eval, model):
    run = _simulated_bold_jit
    return [run(net, tr, n_samples, dt, key=k, model=model) for k in jax.random.split(key, n_eval)]  # one at a time


def _score(bolds, data, fcd_window, fcd_step) -> FCScore:
    emp = jnp.asarray(data.fc)
    fcs = [_features.fc(b) for b in bolds]
    r = jnp.stack([_features.fc_correlation(f, emp) for f in fcs])
    mean_fc = jnp.mean(jnp.stack(fcs), axis=0)
    ks = jnp.full((len(bolds),), jnp.nan)
    if data.bold is not None:
        w, s = fcd_windows(data.tr, fcd_window, fcd_step)
        emp_fcd = fcd_sample(jnp.asarray(data.bold).T, w, s)
        if emp_fcd is not None:
            ks = jnp.stack([_features.ks_distance(fcd_sample(b, w, s), emp_fcd) for b in bolds])
    return FCScore(
        r=r,
        fc=mean_fc,
        fcd_ks=ks,
        r_mean_fc=float(_features.fc_correlation(mean_fc, emp)),
        baseline=data.sc_fc_correlation(),
        n_samples=data.n_samples,
        fcd_window=float(fcd_window),
        fcd_step=float(fcd_step),
    )


def score_fc(
    net: Network,
    data: RestingStateData,
    *,
    key: jax.Array,
    dt: float | None = None,
    n_eval: int = 4,
    model: str = "SupHopf",
    fcd_window: float = FCD_WINDOW,
    fcd_step: float = FCD_STEP,
) -> FCScore:
    """Score ``net`` against a recording ``data`` on ``n_eval`` fresh noise realisations, each simulated as long as
    the recording (``data.n_samples`` volumes at ``data.tr``): FC r, FCD KS distance (windows of ``fcd_window`` ms
    shifted by ``fcd_step`` ms) and the log-SC baseline (:class:`FCScore`). ``dt`` (ms) defaults to
    :func:`default_dt` of the TR."""
    dt = default_dt(data.tr) if dt is None else float(dt)
    bolds = _simulate_eval(net, data.tr, data.n_samples, dt, key, n_eval, model)
    return _score(bolds, data, fcd_window, fcd_step)


def _fcd_term(train: RestingStateData, weight: float, temperature: float, window: float, step: float):
    """``bold -> weight * smooth KS(FCD(bold), FCD of train)``, or None for a weight of 0."""
    if not (math.isfinite(weight) and weight >= 0):
        raise ValueError(f"fit_fc: fcd_weight must be a finite weight >= 0, got {weight!r}.")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(
            f"fit_fc: fcd_temperature must be positive (units of correlation, e.g. 0.02), got {temperature!r}."
        )
    if weight == 0:
        return None
    w, s = fcd_windows(train.tr, window, step)
    emp = None if train.bold is None else fcd_sample(jnp.asarray(train.bold).T, w, s)
    if emp is None:
        raise ValueError(
            f"fit_fc: fcd_weight > 0 needs a BOLD series of at least about two FCD windows ({window / 1000:g} s each); "
            f"{train.name} has {'none' if train.bold is None else f'{train.n_samples} volumes'}."
        )

    emp_q = sample_quantiles(emp)

    def term(bold):
        return weight * quantile_ks_loss(fcd_sample(bold, w, s), emp_q, temperature=temperature)

    return term


def _held_out(net, bolds, data, held, dt, key, n_eval, model, fcd) -> tuple[FCScore, FCScore]:
    """The scores of the fitted ``net`` on the held-out part (reusing the in-sample ``bolds`` when as long) and on
    the whole recording, on the same ``n_eval`` keys."""
    if held.n_samples != bolds[0].shape[0]:
        bolds = _simulate_eval(net, held.tr, held.n_samples, dt, key, n_eval, model)
    whole = _score(_simulate_eval(net, data.tr, data.n_samples, dt, key, n_eval, model), data, *fcd)
    return _score(bolds, held, *fcd), whole


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
    holdout: str = "none",
    fcd_window: float = FCD_WINDOW,
    fcd_step: float = FCD_STEP,
    heterogeneity: str | ArrayLike | None = None,
    fcd_weight: float = 0.0,
    fcd_temperature: float = 0.02,
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
    - `holdout`: ``"none"`` (fit and score on the whole recording) or ``"half"`` (fit on the first half of
      ``data.bold``, score on both halves: :meth:`RestingStateData.split`; needs the BOLD series).
    - `fcd_window`, `fcd_step`: FCD windows and their shift (ms) for the FCD KS distance of the scores.
    - `heterogeneity`: a map of ``a`` (:func:`heterogeneity_basis`: ``"strength"``, ``"eigenmodes:K"``, maps ``(N,)``
      or ``(N, K)``): ``a_i = c_0 + sum_k c_k z_k(i)``, the coefficients ``params["model.a.coef"]`` fitted too.
    - `fcd_weight`: weight ``w`` of the FCD term of the loss ``1 - r + w KS_smooth(FCD_sim, FCD_emp)`` (0: FC only),
      the smooth KS (temperature `fcd_temperature`, in units of correlation) between 256 quantiles of the simulated
      and the empirical FCD values (:func:`~vbtjax.inference.losses.quantile_ks_loss`; windows as for the scores).

    Each simulated series has as many samples as the data it is compared with, so the simulated and empirical FC
    carry the same sampling noise. The evaluation uses the same ``n_eval`` keys for the start and the fitted
    network, and, when both halves are as long, the same simulated series for both halves.
    """
    if not isinstance(data, RestingStateData):
        raise TypeError(f"fit_fc: data must be a vbtjax.empirical.RestingStateData, got {type(data).__name__}.")
    if holdout not in HOLDOUTS:
        raise ValueError(f"fit_fc: holdout must be one of {', '.join(HOLDOUTS)}, got {holdout!r}.")
    fcd_windows(data.tr, fcd_window, fcd_step)  # checks them before the fit
    dt = default_dt(data.tr) if dt is None else float(dt)
    if not (dt > 0 and abs(data.tr / dt - round(data.tr / dt)) < 1e-9):
        raise ValueError(f"fit_fc: dt={dt} ms must divide the repetition time tr={data.tr} ms.")
    halves = data.split() if data.bold is not None and data.n_samples >= 6 else None
    if holdout == "half" and halves is None:
        data.split()  # raises the reason: no BOLD series, or too short
    train = halves[0] if holdout == "half" else data
    net = fc_network(data.connectome, model) if start is None else start
    basis = heterogeneity_basis(data.connectome, heterogeneity)
    net = net if basis is None else _per_region_a(net)
    selection = fc_parameters(net, dt, fit_parameters, model, basis)
    key = jax.random.key(0) if key is None else key
    k_fit, k_eval = jax.random.split(key)
    emp = jnp.asarray(train.fc)
    fcd_term = _fcd_term(train, fcd_weight, fcd_temperature, fcd_window, fcd_step)

    def loss_fn(net, k):
        bold = simulated_bold(net, train.tr, train.n_samples, dt, key=k, model=model)
        loss = fc_correlation_loss(_features.fc(bold), emp)
        return loss if fcd_term is None else loss + fcd_term(bold)

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
    start_bolds = _simulate_eval(net, train.tr, train.n_samples, dt, k_eval, n_eval, model)
    r_start = _score(start_bolds, train, fcd_window, fcd_step).r
    bolds = _simulate_eval(res.net, train.tr, train.n_samples, dt, k_eval, n_eval, model)
    in_sample = _score(bolds, train, fcd_window, fcd_step)
    test = whole = None
    if holdout == "half":
        test, whole = _held_out(res.net, bolds, data, halves[1], dt, k_eval, n_eval, model, (fcd_window, fcd_step))
    ceiling = float("nan") if halves is None else float(_features.fc_correlation(halves[0].fc, halves[1].fc))
    return FCFit(
        net=res.net,
        result=res,
        params=res.params,
        fc=in_sample.fc,
        r=in_sample.r,
        r_mean_fc=in_sample.r_mean_fc,
        r_start=r_start,
        baseline=in_sample.baseline,
        model=model,
        dt=dt,
        tr=train.tr,
        n_samples=train.n_samples,
        train=in_sample,
        test=test,
        whole=whole,
        holdout=holdout,
        ceiling=ceiling,
        selection=selection,
        basis=None if basis is None else jnp.asarray(basis),
        fcd_weight=float(fcd_weight),
    )
