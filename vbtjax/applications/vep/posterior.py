"""The VEP posterior: likelihoods with the per-channel nuisance parameters integrated out, the posterior of a
recording, data-driven starting points, the mode and its Laplace shape."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ...data.connectome import Connectome
from ...data.recordings import SEEGRecording
from ...inference.params import Affine, Parameter, Positive, Selection
from ...inference.posterior import Latent, Posterior
from .network import (
    DT,
    DURATION,
    PERIOD,
    TIME_SCALE_RANGE,
    X0_HEALTHY,
    X1_REST,
    simulate_level,
    simulate_power,
    vep_network,
)
from .observation import (
    FEATURES,
    crop_to_cycles,
    seeg_features,
    seeg_log_power,
    signal_kind,
    silent,
    window_power,
)

NOISE_MODELS = ("correlated", "independent")
"""Observation-noise models of the ``"power"`` feature (:func:`vep_posterior`)."""


def shared_noise_basis(gain: Any, dtype: Any = jnp.float32, correlation: Any = None) -> tuple[Array, Array]:
    """``(lam (C,), Q (C, C))``: eigenvalues and eigenvectors of ``R * R`` (element-wise), ``R`` the correlation of
    the contacts' signals when every region contributes the same power (``gain @ gain.T``, normalised). Two contacts
    that see the same regions see the same fluctuations of those regions' power: the log power of contact ``c`` has
    the noise covariance ``tau^2 (R * R) + sigma^2 I`` to first order, which this basis diagonalises. ``lam.sum()**2
    / (lam**2).sum()`` is the effective number of independent contacts.

    With `correlation` ``(T, C, C)``, the contacts' signal correlation in each window measured on the recording
    (:func:`~vbtjax.applications.vep.observation.window_correlation`), ``R`` is that of each window instead:
    ``lam (T, C)``, ``Q (T, C, C)``. For Gaussian signals the log mean square of ``n`` samples has exactly the
    covariance ``(2 / n) R * R``; the recording's own ``R`` holds whatever the regions' powers and the sensor noise
    were in that window, which the equal-power ``R`` does not."""
    if correlation is not None:
        R = np.asarray(correlation, dtype=float)
        lam, Q = np.linalg.eigh(R * R)
        return jnp.asarray(np.clip(lam, 0.0, None), dtype), jnp.asarray(Q, dtype)
    g = np.asarray(gain, dtype=float)
    cov = g @ g.T
    d = np.sqrt(np.clip(np.diag(cov), np.finfo(float).tiny, None))
    R = cov / np.outer(d, d)
    lam, Q = np.linalg.eigh(R * R)
    return jnp.asarray(np.clip(lam, 0.0, None), dtype), jnp.asarray(Q, dtype)


def _contact_terms(obs, net, lat) -> tuple[Array, Array]:
    """``(log-likelihood per term, fitted envelope (T, contacts))`` of the observation ``obs = (envelope, gain,
    feature, duration, dt, fixed_time_scale, basis)``, with the per-contact nuisance parameters integrated out:
    ``"power"``, an offset of the log power with a flat prior (a contact's unknown gain); ``"level"``, an offset
    with a flat prior and the contact's polarity (+1 or -1, equally likely), with one ``scale`` shared by all
    contacts (latent) on the gain divided by its largest magnitude. The amplitude across contacts, which locates the
    seizing regions, is kept by both: by the size of each contact's power change, and by the shared scale.

    The terms are the contacts (independent noise), or, for ``"power"`` with a `basis` (:func:`shared_noise_basis`),
    the decorrelated components of the contacts: noise ``tau^2 (R * R) + sigma^2 I`` (``tau`` latent), so that
    fluctuations shared by neighbouring contacts count once, not once per contact."""
    env, gain, feature, duration, dt, fixed, basis = obs
    sigma = lat["sigma"]
    ts = lat["time_scale"] if fixed is None else fixed
    T = env.shape[0]
    period = duration / T
    if feature == "power":
        raw = seeg_log_power(simulate_power(net, duration, dt, period, ts), gain)
        r = env - raw
        offset = jnp.mean(r, axis=0)  # the offsets' posterior mean (flat prior; the same noise in every window)
        rc = r - offset
        if basis is None:
            var, sq = sigma**2, jnp.sum(rc**2, 0)
        elif basis[1].ndim == 3:  # per-window noise covariances (the recording's correlation); offsets at their mean
            lam, Q = basis
            var_t = lat["tau"] ** 2 * lam + sigma**2  # (T, C)
            z = jnp.einsum("tc,tck->tk", rc, Q)
            ll_t = -0.5 * jnp.log(2 * jnp.pi * var_t) - z**2 / (2 * var_t)
            var_bar = 1.0 / jnp.mean(1.0 / var_t, axis=0)
            return jnp.sum(ll_t, 0) + 0.5 * jnp.log(2 * jnp.pi * var_bar) - 0.5 * jnp.log(T), raw + offset
        else:
            lam, Q = basis
            var, sq = lat["tau"] ** 2 * lam + sigma**2, jnp.sum((rc @ Q) ** 2, 0)
        ll = -0.5 * (T - 1) * jnp.log(2 * jnp.pi * var) - 0.5 * jnp.log(T) - sq / (2 * var)
        return ll, raw + offset
    raw = simulate_level(net, duration, dt, period, ts) @ (gain / jnp.max(jnp.abs(gain))).T
    mc = raw - jnp.mean(raw, axis=0)
    d = env - jnp.mean(env, axis=0)
    signed = []
    for sign in (1.0, -1.0):
        r = d - sign * lat["scale"] * mc
        signed.append(
            -0.5 * (T - 1) * jnp.log(2 * jnp.pi * sigma**2) - 0.5 * jnp.log(T) - jnp.sum(r**2, 0) / (2 * sigma**2)
        )
    ll = jnp.logaddexp(signed[0], signed[1]) - jnp.log(2.0)
    polarity = jnp.tanh(0.5 * (signed[0] - signed[1]))  # posterior mean of each contact's sign
    return ll, jnp.mean(env, axis=0) + polarity * lat["scale"] * mc


class VEPPosterior(Posterior):
    """A :class:`~vbtjax.inference.Posterior` that also keeps the VEP's data and observation model: the
    `envelope` ``(T, contacts)``, the `gain` ``(contacts, N)``, the `feature` (``"power"`` or ``"level"``, see
    :data:`FEATURES`), the model time ``duration`` and step ``dt`` (ms), and for correlated noise the
    `noise_basis` (:func:`shared_noise_basis`; None: independent contacts). :meth:`predict` gives the model's
    envelope at ``u`` and :meth:`pointwise` the log-likelihood per term."""

    envelope: Array
    gain: Array
    feature: str = eqx.field(static=True)
    duration: float = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    fixed_time_scale: float | None = eqx.field(static=True)
    cropped_s: tuple[float, float] | None = eqx.field(static=True, default=None)
    noise_basis: tuple[Array, Array] | None = None

    def __init__(
        self,
        net,
        selection,
        priors,
        latents,
        *,
        envelope,
        gain,
        feature,
        duration,
        dt,
        fixed_time_scale=None,
        cropped_s=None,
        noise_basis=None,
    ):
        self.envelope = envelope
        self.gain = gain
        self.feature = str(feature)
        self.duration = float(duration)
        self.dt = float(dt)
        self.fixed_time_scale = None if fixed_time_scale is None else float(fixed_time_scale)
        self.cropped_s = None if cropped_s is None else tuple(float(v) for v in cropped_s)
        self.noise_basis = noise_basis
        obs = (envelope, gain, self.feature, self.duration, self.dt, self.fixed_time_scale, noise_basis)

        def log_likelihood(net, lat):
            return jnp.sum(_contact_terms(obs, net, lat)[0])

        def pointwise(net, lat):
            return _contact_terms(obs, net, lat)[0]

        super().__init__(net, selection, priors, log_likelihood, latents, pointwise_log_likelihood=pointwise)

    @property
    def period(self) -> float:
        """Model time per envelope window, ms."""
        return self.duration / self.envelope.shape[0]

    def _terms(self, u):
        x = self.constrained(u)
        obs = (self.envelope, self.gain, self.feature, self.duration, self.dt, self.fixed_time_scale, self.noise_basis)
        return _contact_terms(obs, self.network(u), {n: x[n] for n in self.latents})

    def pointwise(self, u: Float[Array, " d"]) -> Float[Array, " contacts"]:
        """Log-likelihood of each contact's envelope at ``u``, or with correlated noise of each decorrelated
        component of the contacts (:func:`shared_noise_basis`); they sum to :meth:`log_likelihood_at`."""
        return self._terms(u)[0]

    def noise(self, u: Float[Array, " d"], key: jax.Array) -> Float[Array, "T contacts"]:
        """One draw of the observation noise at ``u``: independent ``N(0, sigma^2)`` per contact, or with correlated
        noise ``N(0, tau^2 (R * R) + sigma^2 I)`` per window (:func:`shared_noise_basis`)."""
        x = self.constrained(u)
        eps = jax.random.normal(key, self.envelope.shape, self.envelope.dtype)
        if self.noise_basis is None:
            return x["sigma"] * eps
        lam, Q = self.noise_basis
        sd = jnp.sqrt(x["tau"] ** 2 * lam + x["sigma"] ** 2)  # (C,) or (T, C)
        if Q.ndim == 2:
            return (sd * eps) @ Q.T
        return jnp.einsum("tck,tk->tc", Q, sd * eps)

    def predict(self, u: Float[Array, " d"]) -> Float[Array, "T contacts"]:
        """The model's envelope at ``u``, with the per-contact offsets (and, for ``"level"``, scales) at their
        posterior mean given ``u``: what the data are compared with."""
        return self._terms(u)[1]


def vep_posterior(
    connectome: Connectome,
    gain: Any,
    envelope: Any,
    *,
    feature: str = "power",
    duration: float = DURATION,
    dt: float = DT,
    x0_prior: tuple[float, float] = (X0_HEALTHY, 0.5),
    K_prior_scale: float = 0.5,
    sigma_prior_scale: float = 1.0,
    time_scale: float | tuple[float, float] | None = TIME_SCALE_RANGE,
    dtype: Any = jnp.float32,
    cropped_s: tuple[float, float] | None = None,
    noise: str = "correlated",
    noise_correlation: Any = None,
) -> VEPPosterior:
    """The VEP posterior given an SEEG `envelope` ``(T, contacts)`` of the kind `feature` (:func:`seeg_features`) and
    the `gain` ``(contacts, N)`` (mm^-2; rows of a bipolar channel are differences of two contacts' rows).

    Sampled: ``x0`` per region (prior ``Normal(*x0_prior)``, non-centred), the coupling ``K``
    (``HalfNormal(K_prior_scale)``), the observation sd ``sigma`` (``HalfNormal(sigma_prior_scale)``) and, unless
    `time_scale` is a number (then fixed), the ``time_scale`` that maps the recording onto the model's time: the
    network runs ``time_scale * duration`` ms of its own time over the recording (prior log-uniform on the
    `time_scale` range, default :data:`TIME_SCALE_RANGE`); for ``"level"`` also the ``scale`` shared by all contacts
    (``LogNormal(0, 2)``). Each contact's offset (and, for ``"level"``, its polarity) is integrated out
    analytically, so that a contact's unknown reference (and, for ``"power"``, its unknown gain) does not matter; the
    model's window ``m`` (at ``(m + 1) duration / T`` ms) is compared with the data's window ``m``. `cropped_s`: the
    seconds of the recording the envelope covers, kept for the record (:func:`recording_posterior` sets it).

    `noise` (``"power"`` only): ``"correlated"`` (default), the contacts share the fluctuations of the regions they
    all see, with covariance ``tau^2 (R * R) + sigma^2 I`` (``tau ~ HalfNormal(1)`` sampled, ``R`` from the gain:
    :func:`shared_noise_basis`); ``"independent"``, each contact its own noise of sd ``sigma``. Independent noise
    counts a fluctuation seen by ten neighbouring contacts ten times, which makes spurious seizing regions
    likely."""
    import numpyro.distributions as dist

    from ...inference.params import Interval

    env = jnp.asarray(envelope, dtype=dtype)
    gain = jnp.asarray(gain, dtype=dtype)
    if feature not in FEATURES:
        raise ValueError(f"vep_posterior: feature must be one of {FEATURES}, got {feature!r}.")
    if noise not in NOISE_MODELS:
        raise ValueError(f"vep_posterior: noise must be one of {NOISE_MODELS}, got {noise!r}.")
    if env.ndim != 2:
        raise ValueError(f"vep_posterior: envelope has shape {env.shape}; expected (windows, contacts).")
    if gain.ndim != 2 or gain.shape[0] != env.shape[1]:
        raise ValueError(
            f"vep_posterior: gain has shape {gain.shape} but the envelope has {env.shape[1]} contacts; expected "
            f"({env.shape[1]}, n_regions)."
        )
    if gain.shape[1] != connectome.n_regions:
        raise ValueError(
            f"vep_posterior: gain has {gain.shape[1]} columns but the connectome has {connectome.n_regions} regions."
        )
    if not bool(jnp.all(jnp.isfinite(env))) or not bool(jnp.all(jnp.isfinite(gain))):
        raise ValueError("vep_posterior: the envelope or the gain contains NaN or inf.")
    T = env.shape[0]
    if T < 4:
        raise ValueError(f"vep_posterior: the envelope has {T} windows; at least 4 are needed.")
    period = duration / T
    if abs(round(period / dt) * dt - period) > 1e-9 * period:
        raise ValueError(f"vep_posterior: duration / windows = {period} ms must be a whole number of dt = {dt} ms.")
    loc, scale = x0_prior
    net = vep_network(connectome, x0=loc, K=K_prior_scale)
    net = jax.tree.map(lambda x: x.astype(dtype) if eqx.is_inexact_array(x) else x, net)
    sel = Selection(
        [
            Parameter(lambda n: n.model.x0, Affine(loc, scale), name="x0"),
            Parameter(lambda n: n.coupling.a, Positive(), name="K"),
        ]
    )
    latents = {"sigma": Latent(dist.HalfNormal(sigma_prior_scale), Positive(), init=0.3 * sigma_prior_scale)}
    if feature == "level":  # data (largest sd 1) = scale * model level (gain / max |gain|, x1 in its own units)
        latents["scale"] = Latent(dist.LogNormal(0.0, 2.0), Positive(), init=1.0)
    basis = None
    if feature == "power" and noise == "correlated":
        latents["tau"] = Latent(dist.HalfNormal(1.0), Positive(), init=0.2)
        basis = shared_noise_basis(gain, dtype, noise_correlation)
    fixed = None
    if time_scale is None or np.ndim(time_scale) == 0:
        fixed = 1.0 if time_scale is None else float(time_scale)
        if not fixed > 0:
            raise ValueError(f"vep_posterior: a fixed time_scale must be > 0, got {time_scale}.")
    else:
        lo, hi = (float(v) for v in time_scale)
        if not 0 < lo < hi:
            raise ValueError(f"vep_posterior: time_scale range must satisfy 0 < low < high, got {time_scale}.")
        init = float(np.clip(1.0, lo, hi)) if lo < 1.0 < hi else float(np.sqrt(lo * hi))
        latents["time_scale"] = Latent(dist.LogUniform(lo, hi), Interval(lo, hi), init=init)
    return VEPPosterior(
        net,
        sel,
        priors={"x0": dist.Normal(loc, scale), "K": dist.HalfNormal(K_prior_scale)},
        latents=latents,
        envelope=env,
        gain=gain,
        feature=feature,
        duration=duration,
        dt=dt,
        fixed_time_scale=fixed,
        cropped_s=cropped_s,
        noise_basis=basis,
    )


def recording_posterior(
    connectome: Connectome,
    sensors: Any,
    recording: SEEGRecording,
    *,
    feature: str = "auto",
    crop: Any = "auto",
    duration: float = DURATION,
    period: float = PERIOD,
    dt: float = DT,
    time_scale: float | tuple[float, float] | None = TIME_SCALE_RANGE,
    dtype: Any = jnp.float32,
    noise: str = "correlated",
) -> VEPPosterior:
    """:func:`vep_posterior` of an SEEG `recording` of any length and sampling rate, cut into
    ``duration / period`` windows: its channels are contacts of `sensors` (monopolar) or pairs ``"X-Y"`` of them
    (bipolar); the gain comes from the contacts' positions and the connectome's centres; `feature` ``"auto"``
    chooses the observation model from the data (:func:`signal_kind`). `crop`: ``"auto"`` keeps the first two
    seizure cycles of a ``"level"`` recording with recurring seizures (:func:`crop_to_cycles`), a number keeps the
    first that many seconds, ``None`` keeps everything; the seconds kept are in ``posterior.cropped_s``."""
    from ...data.recordings import channel_gain

    if connectome.centres is None:
        raise ValueError("recording_posterior: the connectome needs region centres (mm) for the SEEG gain.")
    gain = channel_gain(recording.ch_names, sensors, connectome.centres)
    n_win = int(round(duration / period))
    if feature == "auto":
        feature = signal_kind(recording.data)
    if feature == "power":
        recording = _drop_silent(recording, n_win)
    if isinstance(crop, str):
        if crop != "auto":
            raise ValueError(f"recording_posterior: crop must be 'auto', a number of seconds or None, got {crop!r}.")
        if feature == "level":
            recording = crop_to_cycles(recording, 2, feature)
    elif crop is not None:
        if not (np.isfinite(crop) and crop > 0):
            raise ValueError(f"recording_posterior: crop must be a positive number of seconds, got {crop}.")
        recording = recording.crop(0.0, float(crop))
    env, feature = seeg_features(recording.data, recording.sfreq, n_win, feature)
    kept = (0.0, recording.data.shape[1] / recording.sfreq)
    return vep_posterior(
        connectome,
        gain,
        env,
        feature=feature,
        duration=duration,
        dt=dt,
        time_scale=time_scale,
        dtype=dtype,
        cropped_s=kept,
        noise=noise,
    )


def _drop_silent(recording: SEEGRecording, n_windows: int) -> SEEGRecording:
    """The recording without channels that have a window of (numerically) zero power after detrending, e.g. a
    bipolar pair of contacts quantised to the same values by a 16-bit file format (a warning names them)."""
    quiet = silent(window_power(recording.data, n_windows, "recording_posterior"))
    if not np.any(quiet):
        return recording
    names = [c for c, q in zip(recording.ch_names, quiet, strict=True) if q]
    if len(names) == len(recording.ch_names):
        raise ValueError("recording_posterior: every channel has a window without signal; nothing to fit.")
    import warnings

    warnings.warn(
        f"recording_posterior: left out {len(names)} channels with a window without signal ({', '.join(names[:8])}"
        f"{' ...' if len(names) > 8 else ''}): flat or quantised to one value.",
        stacklevel=3,
    )
    keep = [c for c in recording.ch_names if c not in set(names)]
    out = recording.pick(keep)
    out.meta = {**out.meta, "silent_channels": names}
    return out


def initial_guess(posterior: Posterior, *, x0_seizing: float = -1.7, min_share: Any = (0.1, 0.25, 0.5)) -> Array:
    """Data-driven starting points for the VEP posterior: ``(len(min_share) + 1, d)`` unconstrained ``u``.

    A region that does not seize has almost no gradient towards seizing, so gradient ascent from a healthy start
    can explain a contact's seizure with the wrong region. These start instead from the regions whose seizures best
    explain each contact's change over the recording, fitted by non-negative least squares as a sum over regions of
    what one region's seizure alone would do to that contact (``"power"``: the relative power increase
    ``exp(max_t y_k - baseline_k) - 1``, baseline the 10 % quantile over windows; ``"level"``: the range of the
    standardised level against the share of the contact's gain); for each value of `min_share`, the regions with a
    fitted share above it start at ``x0 = x0_seizing`` and the others at the prior's centre. The last row is the
    healthy network."""
    from scipy.optimize import nnls

    if not isinstance(posterior, VEPPosterior):
        raise TypeError("initial_guess: expected the posterior of vep_posterior().")
    env, gain = np.asarray(posterior.envelope, dtype=float), np.asarray(posterior.gain, dtype=float)
    if posterior.feature == "power":
        g2 = gain**2
        base = g2.sum(axis=1) * np.exp(2 * X1_REST)
        design = g2 * (np.exp(0.8) - np.exp(2 * X1_REST)) / base[:, None]
        target = np.expm1(env.max(axis=0) - np.quantile(env, 0.1, axis=0))
    else:
        ag = np.abs(gain)
        design = ag / ag.sum(axis=1, keepdims=True)
        rng = env.max(axis=0) - env.min(axis=0)
        target = rng / max(float(rng.max()), 1e-12)
    a, _ = nnls(design, np.maximum(target, 0.0))
    if posterior.feature == "level":
        a = a / max(float(a.max()), 1e-12)
    base_vals = posterior.constrained(posterior.initial_position())
    out = []
    for share in np.atleast_1d(min_share):
        vals = dict(base_vals)
        x0 = np.array(vals["x0"], dtype=float)
        x0[a > share] = x0_seizing
        vals["x0"] = x0
        out.append(posterior.unconstrained(vals))
    out.append(posterior.initial_position())
    return jnp.stack(out)


def posterior_mode(
    posterior: Posterior, *, init: Any = None, steps: int = 200, newton_steps: int = 8
) -> tuple[Array, Array]:
    """The maximum a posteriori point and the Hessian of ``-log_density`` there: ``(u_map (d,), hessian (d, d))``.

    From `init`, one start ``(d,)`` (default the network's values) or several ``(k, d)``, both L-BFGS (Optax, zoom
    line search; `steps` iterations) and Adam (``2 * steps``, learning rate 0.05) run on ``-log_density`` in
    unconstrained space, every start at once (``jax.vmap``); the highest density reached wins, and `newton_steps`
    damped Newton steps (Levenberg-Marquardt, step halving) finish it. Neither first-order method alone was reliable:
    Adam moves every coordinate at its learning rate whatever the size of the gradient, so weakly observed regions
    drift above the critical excitability; L-BFGS's line search sometimes jumps to a configuration where many regions
    seize; and both stop short in the directions the data pin down to 1e-4 (an EZ's ``x0`` against ``K``)."""
    import optax

    u = posterior.initial_position() if init is None else jnp.asarray(init)
    starts = u[None] if u.ndim == 1 else u

    def fun(v):
        return -posterior.log_density(v)

    lbfgs = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(fun)
    adam = optax.adam(0.05)

    def run_lbfgs(u):
        def body(carry, _):
            u, state = carry
            value, grad = value_and_grad(u, state=state)
            upd, state = lbfgs.update(grad, state, u, value=value, grad=grad, value_fn=fun)
            return (optax.apply_updates(u, upd), state), value

        (u, _), _ = jax.lax.scan(body, (u, lbfgs.init(u)), None, length=int(steps))
        return u, fun(u)

    def run_adam(u):
        def body(carry, _):
            u, state = carry
            g = jax.grad(fun)(u)
            upd, state = adam.update(g, state, u)
            return (optax.apply_updates(u, upd), state), None

        (u, _), _ = jax.lax.scan(body, (u, adam.init(u)), None, length=2 * int(steps))
        return u, fun(u)

    results = [jax.jit(jax.vmap(run))(starts) for run in (run_lbfgs, run_adam)]
    us = jnp.concatenate([r[0] for r in results])
    losses = jnp.concatenate([r[1] for r in results])
    losses = jnp.where(jnp.isfinite(losses), losses, jnp.inf)
    u = us[int(jnp.argmin(losses))]
    hess_fn = jax.jit(jax.hessian(fun))  # jitted: evaluated op by op it took longer than the whole search
    grad_fn = jax.jit(jax.value_and_grad(fun))
    value, grad = grad_fn(u)
    hess = hess_fn(u)
    for _ in range(int(newton_steps)):
        h64 = np.asarray(hess, dtype=float)
        w, v = np.linalg.eigh(0.5 * (h64 + h64.T))
        lam = max(0.0, -float(w.min())) + 1e-3 * max(1.0, float(np.abs(w).max())) ** 0.5
        g64 = np.asarray(grad, dtype=float)
        moved = False
        for _ in range(6):
            step = (v / (np.maximum(w, 0.0) + lam)) @ (v.T @ g64)
            cand = jnp.asarray(np.asarray(u, dtype=float) - step, u.dtype)
            c_value, c_grad = grad_fn(cand)
            if bool(jnp.isfinite(c_value)) and float(c_value) < float(value):
                u, value, grad, moved = cand, c_value, c_grad, True
                break
            lam *= 10.0
        if not moved:
            break
        hess = hess_fn(u)
    return u, 0.5 * (hess + hess.T)


def laplace_factor(hessian: Any, *, floor: float = 1.0) -> np.ndarray:
    """``(d, d)`` factor ``L`` with ``L @ L.T`` the inverse of `hessian` (symmetrised, eigenvalues raised to at least
    `floor`, float64): the shape of the Laplace approximation at a mode, used to precondition NUTS. The floor keeps
    the directions the data do not inform (and those of negative curvature) at the prior's unit scale."""
    h = np.asarray(hessian, dtype=float)
    w, v = np.linalg.eigh(0.5 * (h + h.T))
    return v / np.sqrt(np.maximum(w, floor))
