"""Ready-made simulation-based inference problems: the prior, the simulator with its observation noise, the features
and how a raw observation file becomes features, for the Virtual Epileptic Patient and resting-state FC.

A :class:`Problem` is rebuilt from its JSON-able ``spec`` (:func:`problem_from_spec`), which is what ``vbtjax sbi``
stores next to a budget and inside a saved estimator, so that a later observation is turned into features exactly
as the simulations were.

**VEP** (:func:`vbtjax.applications.vep.sbi.vep_problem`, also ``vbtjax.sbi.vep_problem``): the network, priors and
constraints of :func:`vbtjax.vep.vep_posterior` (``x0`` per region ``Normal(-2.5, 0.5)`` through its ``Affine``
constraint, ``K ~ HalfNormal(0.5)``); the features are the patient's SEEG log-power envelope ``(windows, contacts)``
(the contacts' gain from the recording or a synthetic patient's implant) plus Gaussian observation noise of fixed sd
`noise_sd`, **minus its mean over all windows and contacts**. The NUTS likelihood of :func:`vbtjax.vep.vep_posterior`
instead integrates out an offset of the log power per contact and infers the noise sd ``sigma`` (and a time scale) as
latent variables; NPE cannot have latents that are not network parameters, so one common offset is removed from the
features (subtracting the mean makes them invariant to it) and the noise sd is fixed (0.2 by default: the scatter of the
log of a mean of 64 squared Gaussian samples is about ``sqrt(2 / 64) = 0.18``, that of
:func:`vbtjax.vep.synthetic_patient`'s windows). A recording much noisier than `noise_sd` gives NPE draws that are too
narrow; build the budget with a larger `noise_sd` then.

**Resting state** (:func:`resting_state_problem`): the SupHopf FC network of
:func:`vbtjax.inference.resting_state.fc_network` on a connectome (the embedded HCP subject by default) with a
*scalar* bifurcation parameter; the prior is ``coupling.a ~ Uniform(0, coupling_max)`` (1/ms) and ``model.a ~
Uniform(*a_range)`` (1/ms). The simulator is :func:`~vbtjax.inference.resting_state.simulated_bold` (its noise is
the stochastic dynamics: no further observation noise), reduced to summaries of the FC (mean, sd and quantiles of
its upper triangle, its correlation with ``log1p(SC)``, the FC of strongly minus weakly connected pairs, the three
largest eigenvalues / N) and, with ``features="fc+fcd"``, of the FCD (mean, sd and quantiles of the correlations
between the FCs of sliding windows that do not overlap). The summaries depend on the length of the series (the
sampling noise of a correlation is about ``1 / sqrt(T)``), so simulate as many volumes (`n_samples`) at the
observation's TR as the observation has. With ``a_map``, ``model.a`` is a parameter map ``a0 + a1 z`` over a
z-scored regional map ``z`` (``Parameter(basis=...)``), and the features gain the map's correlation with the regions'
mean FC and BOLD log sd.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..observation.features import pearson_r

__all__ = [
    "Problem",
    "PROBLEMS",
    "resting_state_problem",
    "problem_from_spec",
    "register_problem",
    "registered_problem",
    "FC_FEATURES",
]

PROBLEMS = ("vep", "resting-state")
"""The problems of vbtjax: ``"resting-state"`` here, ``"vep"`` registered by :mod:`vbtjax.applications.vep.sbi`."""

FC_FEATURES = (
    "fc_mean",
    "fc_sd",
    "fc_q10",
    "fc_q50",
    "fc_q90",
    "fc_sc_corr",
    "fc_strong_minus_weak",
    "fc_eig1",
    "fc_eig2",
    "fc_eig3",
)
"""Summary features of the resting-state problem's FC (upper triangle statistics, SC-FC correlation, leading
eigenvalues)."""
FCD_FEATURES = ("fcd_mean", "fcd_sd", "fcd_q10", "fcd_q50", "fcd_q90")


@dataclass
class Problem:
    """One simulation-based inference problem.

    - `name`: ``"vep"`` or ``"resting-state"``; `spec`: JSON-able arguments that rebuild it (:func:`problem_from_spec`).
    - `prior`: a :class:`~vbtjax.inference.Posterior` without likelihood (network, selection, NumPyro priors).
    - `run`: ``run(network, key) -> features (F,)``, the simulator with its observation noise.
    - `dt`: the integration step (ms); `feature_names`: ``(F,)``.
    - `observe`: raw observation (a file path, or the object it holds: an :class:`~vbtjax.vep.SEEGRecording`, a BOLD
      array ``(regions, time)``) -> features ``(F,)``.
    - `labels`: region labels; `gain`: the SEEG gain ``(contacts, N)`` (VEP); `batch_size`: simulations per vmapped
      call that suits the problem on CPU.
    """

    name: str
    spec: dict[str, Any]
    prior: Any
    run: Callable[[Any, jax.Array], jax.Array]
    dt: float
    feature_names: tuple[str, ...]
    observe: Callable[[Any], np.ndarray]
    labels: tuple[str, ...] = ()
    gain: np.ndarray | None = None
    batch_size: int = 64
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def description(self) -> dict[str, Any]:
        """What is stored with a budget and an estimator: the problem's spec and its feature names."""
        return {"problem": self.name, "spec": self.spec, "feature_names": list(self.feature_names)}

    def simulate_budget(self, n: int, out: Any = None, *, key: jax.Array, **kwargs):
        """:func:`vbtjax.sbi.simulate_budget` of this problem (`kwargs`: ``chunk_size``, ``batch_size``, ...)."""
        from .budget import simulate_budget

        kwargs.setdefault("batch_size", self.batch_size)
        return simulate_budget(
            self.prior, n, out, run=self.run, dt=self.dt, key=key, description=self.description(), **kwargs
        )


# --------------------------------------------------------------------------------------------------- resting state
def _fc_summaries(fc: jax.Array, log_sc_upper: jax.Array, strong: jax.Array) -> jax.Array:
    n = fc.shape[0]
    iu = np.triu_indices(n, 1)
    v = fc[iu]
    q = jnp.quantile(v, jnp.asarray([0.1, 0.5, 0.9]))
    r = pearson_r(v, log_sc_upper)
    sw = jnp.sum(jnp.where(strong, v, 0.0)) / jnp.sum(strong) - jnp.sum(jnp.where(strong, 0.0, v)) / jnp.sum(~strong)
    eig = jnp.linalg.eigvalsh(0.5 * (fc + fc.T))[::-1][:3] / n
    return jnp.concatenate([jnp.stack([v.mean(), v.std()]), q, jnp.stack([r, sw]), eig])


def _fcd_summaries(bold_tn: jax.Array, window: int, step: int) -> jax.Array:
    from ..observation import features as F

    m = F.fcd(bold_tn, window, step)
    v = F.fcd_values(m, k=math.ceil(window / step))
    q = jnp.quantile(v, jnp.asarray([0.1, 0.5, 0.9]))
    return jnp.concatenate([jnp.stack([v.mean(), v.std()]), q])


def resting_state_problem(
    connectome: Any = None,
    *,
    tr: float = 720.0,
    n_samples: int = 1200,
    dt: float | None = None,
    features: str = "fc+fcd",
    fcd_window: int | None = None,
    fcd_step: int | None = None,
    coupling_max: float = 2e-3,
    a_range: tuple[float, float] = (-1e-4, 2e-5),
    a_map: Any = None,
    a_slope_max: float | None = None,
    spec: Mapping[str, Any] | None = None,
) -> Problem:
    """Resting-state FC as an SBI problem (see the module docstring): global coupling ``coupling.a`` and the
    bifurcation parameter ``model.a`` of the SupHopf network (scalar, or a parameter map) from FC (and FCD)
    summaries.

    **Arguments:** `connectome` (default: the embedded HCP subject 101309's), `tr` (ms) and `n_samples` (volumes) of
    the simulated BOLD, `dt` (ms, default :func:`~vbtjax.inference.resting_state.default_dt`; must divide `tr`),
    `features` ``"fc"`` or ``"fc+fcd"``, `fcd_window` / `fcd_step` in volumes (default: 60 s windows, a quarter
    window apart), the prior ranges.

    `a_map`: ``None`` (one ``model.a`` for all regions), ``"strength"`` (the log node strength of the connectome)
    or a map ``(N,)`` (e.g. a T1w/T2w myelin map): ``model.a`` of region ``i`` is then ``a0 + a1 z_i`` with ``z``
    the map z-scored over regions; the parameter ``model.a`` is ``(a0, a1)`` with ``a0 ~ Uniform(*a_range)`` and
    ``a1 ~ Uniform(-a_slope_max, a_slope_max)`` (1/ms per sd of the map; default a quarter of `a_range`'s width),
    and two features are added: the correlation over regions of ``z`` with each region's mean FC
    (``fc_node_map_corr``) and, with the FCD, with the log sd of its BOLD (``sd_map_corr``)."""
    from ..inference import resting_state as rs

    if features not in ("fc", "fc+fcd"):
        raise ValueError(f"resting_state_problem: features must be 'fc' or 'fc+fcd', got {features!r}.")
    if connectome is None:
        from ..data.datasets import hcp_subject

        connectome = hcp_subject().connectome
    tr = float(tr)
    dt = rs.default_dt(tr) if dt is None else float(dt)
    use_fcd = features == "fc+fcd"
    n_samples, window, step = _bold_windows(tr, dt, n_samples, use_fcd, fcd_window, fcd_step)
    prior, w, z, a_spec = _resting_state_prior(connectome, dt, coupling_max, a_range, a_map, a_slope_max)
    fc_features, summaries = _summary_functions(w, z, window, step, use_fcd)

    def run(m, key):
        return summaries(rs.simulated_bold(m, tr, n_samples, dt, key=key))

    summ_jit = jax.jit(summaries)
    n = w.shape[0]
    full_spec = {
        "tr": tr,
        "n_samples": n_samples,
        "dt": dt,
        "features": features,
        "fcd_window": window,
        "fcd_step": step,
        "coupling_max": float(coupling_max),
        **a_spec,
    }
    full_spec.update(dict(spec or {}))
    map_fc = () if z is None else ("fc_node_map_corr",)
    map_fcd = () if z is None else ("sd_map_corr",)
    names = FC_FEATURES + map_fc + ((FCD_FEATURES + map_fcd) if use_fcd else ())
    labels = tuple(connectome.labels) if connectome.labels is not None else tuple(f"region {i}" for i in range(n))
    return Problem(
        "resting-state",
        full_spec,
        prior,
        run,
        dt,
        names,
        _bold_observer(n, use_fcd, fc_features, summ_jit),
        labels=labels,
        batch_size=16,
        extra={"connectome": connectome, "summaries": summ_jit, "map": z},
    )


def _bold_windows(
    tr: float, dt: float, n_samples: int, use_fcd: bool, fcd_window: int | None, fcd_step: int | None
) -> tuple[int, int, int]:
    """Check the BOLD sampling of :func:`resting_state_problem`; ``(n_samples, fcd window, fcd step)`` in volumes."""
    if not (dt > 0 and abs(tr / dt - round(tr / dt)) < 1e-9):
        raise ValueError(f"resting_state_problem: dt={dt} ms must divide the repetition time tr={tr} ms.")
    n_samples = int(n_samples)
    window = max(10, round(60_000.0 / tr)) if fcd_window is None else int(fcd_window)
    step = max(1, window // 4) if fcd_step is None else int(fcd_step)
    if use_fcd and n_samples < window + step * (math.ceil(window / step) + 1):
        raise ValueError(
            f"resting_state_problem: {n_samples} volumes are too few for FCD windows of {window} volumes {step} apart "
            "(need non-overlapping pairs); simulate more volumes, use smaller windows or features='fc'."
        )
    if n_samples < 10:
        raise ValueError("resting_state_problem: n_samples must be at least 10 volumes.")
    return n_samples, window, step


def _resting_state_prior(
    connectome: Any, dt: float, coupling_max: float, a_range: Any, a_map: Any, a_slope_max: float | None
) -> tuple[Any, np.ndarray, np.ndarray | None, dict[str, Any]]:
    """The prior of :func:`resting_state_problem`: ``(prior, weights, z-scored map or None, spec of model.a)``."""
    import equinox as eqx
    import numpyro.distributions as dist

    from ..inference import resting_state as rs
    from ..inference.params import Interval, Parameter, Selection
    from ..inference.posterior import Posterior

    net = rs.fc_network(connectome)
    bound = rs._coupling_bound(net, dt)
    if coupling_max > bound:
        raise ValueError(
            f"resting_state_problem: coupling_max={coupling_max:g} /ms exceeds the stability bound {bound:.3g} /ms of "
            f"steps of dt={dt:g} ms; use a smaller dt or coupling_max."
        )
    lo, hi = (float(v) for v in a_range)
    if not lo < hi:
        raise ValueError(f"resting_state_problem: a_range must be (low, high) with low < high, got {a_range}.")
    w = np.asarray(net.connectome.weights, dtype=float)
    n = w.shape[0]
    z = _map_scores(a_map, w)
    a_spec: dict[str, Any] = {"a_range": [lo, hi]}
    if z is None:
        a_param = Parameter(lambda m: m.model.a, Interval(lo, hi), name="model.a")
        a_prior = dist.Uniform(lo, hi)
        a0 = jnp.asarray(0.5 * (lo + hi), net.model.a.dtype)
    else:
        s1 = 0.25 * (hi - lo) if a_slope_max is None else float(a_slope_max)
        if not (s1 > 0 and math.isfinite(s1)):
            raise ValueError(f"resting_state_problem: a_slope_max must be a positive number, got {a_slope_max}.")
        b_lo, b_hi = np.asarray([lo, -s1]), np.asarray([hi, s1])
        basis = np.stack([np.ones(n), z], axis=1)
        a_param = Parameter(lambda m: m.model.a, Interval(b_lo, b_hi), name="model.a", basis=basis)
        a_prior = dist.Uniform(jnp.asarray(b_lo), jnp.asarray(b_hi))
        a0 = jnp.full((n,), 0.5 * (lo + hi), net.model.a.dtype)
        a_spec["a_map"] = a_map if isinstance(a_map, str) else np.asarray(a_map, dtype=float).tolist()
        a_spec["a_slope_max"] = s1
    net = eqx.tree_at(lambda m: m.model.a, net, a0)
    sel = Selection([Parameter(lambda m: m.coupling.a, Interval(0.0, float(coupling_max)), name="coupling.a"), a_param])
    prior = Posterior(net, sel, {"coupling.a": dist.Uniform(0.0, float(coupling_max)), "model.a": a_prior}, None)
    return prior, w, z, a_spec


def _summary_functions(
    w: np.ndarray, z: np.ndarray | None, window: int, step: int, use_fcd: bool
) -> tuple[Callable[[jax.Array], jax.Array], Callable[[jax.Array], jax.Array]]:
    """``(fc_features(fc), summaries(bold (time, regions)))``: the features of :func:`resting_state_problem`."""
    from ..observation import features as F

    n = w.shape[0]
    iu = np.triu_indices(n, 1)
    lsc = np.log1p(w[iu])
    log_sc = jnp.asarray(lsc)
    strong = jnp.asarray(lsc > np.median(lsc))
    zj = None if z is None else jnp.asarray(z)

    def fc_features(fc):
        out = _fc_summaries(fc, log_sc.astype(fc.dtype), strong)
        if zj is not None:
            node = (jnp.sum(fc, axis=1) - jnp.diagonal(fc)) / (n - 1)
            out = jnp.concatenate([out, pearson_r(node, zj.astype(fc.dtype))[None]])
        return out

    def summaries(bold_tn):
        out = fc_features(F.fc(bold_tn))
        if use_fcd:
            out = jnp.concatenate([out, _fcd_summaries(bold_tn, window, step)])
            if zj is not None:
                log_sd = jnp.log(jnp.std(bold_tn, axis=0))
                out = jnp.concatenate([out, pearson_r(log_sd, zj.astype(bold_tn.dtype))[None]])
        return out

    return fc_features, summaries


def _bold_observer(n: int, use_fcd: bool, fc_features: Callable, summ_jit: Callable) -> Callable[[Any], np.ndarray]:
    """``observe(obs)`` of :func:`resting_state_problem`: BOLD ``(regions, time)`` or FC (or a file) -> features."""

    def observe(obs) -> np.ndarray:
        if isinstance(obs, str | Path):
            from ..data.empirical import read_matrix

            obs = read_matrix(obs, ("tc", "bold", "ts", "timeseries", "time_series", "data", "fc"), "observation")
        x = np.asarray(obs, dtype=float)
        if x.ndim != 2 or n not in x.shape:
            raise ValueError(f"the observation has shape {x.shape}; expected BOLD (regions, time) = ({n}, T).")
        is_fc = x.shape == (n, n) and np.allclose(np.diag(x), 1.0) and np.allclose(x, x.T)
        if is_fc:
            if use_fcd:
                raise ValueError(
                    "the observation is an FC matrix, but the features include the FCD, which needs the BOLD time "
                    "series; give the BOLD (regions, time) or build the budget with features 'fc'"
                )
            return np.asarray(fc_features(jnp.asarray(x)))
        if x.shape[0] != n:
            raise ValueError(f"the BOLD has shape {x.shape}; expected (regions, time) = ({n}, T): transpose it.")
        if not np.all(np.isfinite(x)) or np.any(np.std(x, axis=1) == 0):
            raise ValueError("the BOLD contains NaN/inf or constant regions.")
        return np.asarray(summ_jit(jnp.asarray(x.T)))

    return observe


def _map_scores(a_map: Any, weights: np.ndarray) -> np.ndarray | None:
    """The z-scored map ``(N,)`` of `a_map` (None, ``"strength"`` or an array), or None."""
    if a_map is None:
        return None
    n = weights.shape[0]
    if isinstance(a_map, str):
        if a_map != "strength":
            raise ValueError(
                f"resting_state_problem: a_map must be None, 'strength' or an array ({n},), got {a_map!r}."
            )
        m = np.log(weights.sum(axis=1) + 1e-12 * max(weights.sum(), 1e-300))
    else:
        m = np.asarray(a_map, dtype=float)
        if m.shape != (n,):
            raise ValueError(f"resting_state_problem: a_map must have one value per region ({n},), got {m.shape}.")
    if not np.all(np.isfinite(m)) or np.std(m) == 0:
        raise ValueError("resting_state_problem: a_map must be finite and not constant over regions.")
    return (m - m.mean()) / m.std()


# ------------------------------------------------------------------------------------------------------- from spec
@dataclass(frozen=True)
class ProblemKind:
    """A named kind of problem: `make`, its public constructor (e.g. :func:`resting_state_problem`), and
    `from_spec`, ``(connectome, spec) -> Problem`` rebuilding one from its spec."""

    name: str
    make: Callable[..., Problem]
    from_spec: Callable[[Any, dict], Problem]


_KINDS: dict[str, ProblemKind] = {}


def register_problem(name: str, make: Callable[..., Problem], from_spec: Callable[[Any, dict], Problem]) -> None:
    """Make the problem kind `name` known to :func:`problem_from_spec` (and so to ``vbtjax sbi`` and saved
    estimators). Applications register their problems when imported (``import vbtjax`` imports them), so the
    inference layer never imports an application."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"register_problem: name must be a non-empty string, got {name!r}.")
    _KINDS[name] = ProblemKind(name, make, from_spec)


def registered_problem(name: str) -> ProblemKind:
    """The registered kind `name`; a :class:`ValueError` naming the known kinds otherwise."""
    if name not in _KINDS:
        raise ValueError(f"unknown problem {name!r}; choose from {tuple(_KINDS)}.")
    return _KINDS[name]


def problem_from_spec(name: str, spec: Mapping[str, Any]) -> Problem:
    """Rebuild a problem from its ``spec`` (as stored in ``problem.json`` by ``vbtjax sbi`` and in an estimator's
    description). The connectome is ``spec["sc"]`` and ``spec["lengths"]`` (files), or ``spec["connectome"]``: a
    TVB size (``"76"``), ``"hcp:SUBJECT"`` (the embedded HCP subject) or a path that
    :meth:`vbtjax.Connectome.from_file` reads; the rest of the spec is read by the kind's ``from_spec``
    (:func:`register_problem`)."""
    try:
        kind = registered_problem(name)
    except ValueError as e:
        raise ValueError(f"problem_from_spec: {e}") from None
    spec = json.loads(json.dumps(dict(spec)))
    if spec.get("sc") is not None:
        import vbtjax as vbt

        conn = vbt.Connectome.from_file(spec["sc"], lengths=spec["lengths"])
    else:
        conn = _connectome(spec.get("connectome"))
    return kind.from_spec(conn, spec)


def _resting_state_from_spec(conn: Any, spec: dict) -> Problem:
    keys = ("tr", "n_samples", "dt", "features", "fcd_window", "fcd_step", "coupling_max", "a_map", "a_slope_max")
    kw = {k: spec[k] for k in keys if k in spec}
    if "a_range" in spec:
        kw["a_range"] = tuple(spec["a_range"])
    return resting_state_problem(conn, spec=spec, **kw)


def _connectome(spec: Any):
    import vbtjax as vbt

    if spec is None:
        raise ValueError("problem_from_spec: the spec names no connectome.")
    spec = str(spec)
    if spec.startswith("hcp:"):
        return vbt.datasets.hcp_subject(spec[4:]).connectome
    if spec.isdigit() and not Path(spec).exists():
        return vbt.datasets.tvb_connectome(int(spec))
    return vbt.Connectome.from_file(spec)


register_problem("resting-state", resting_state_problem, _resting_state_from_spec)


def __getattr__(name: str) -> Any:
    # vep_problem, registered by the applications layer (vbtjax.applications.vep.sbi), is still found here
    if name == "vep_problem":
        return registered_problem("vep").make
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
