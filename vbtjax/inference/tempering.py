"""Adaptive tempered sequential Monte Carlo (BlackJAX's tempered SMC kernel) with HMC or NUTS mutations tuned from
the particles, several independent runs in parallel, and the log marginal likelihood (model evidence).

Tempered SMC moves a population of particles from the prior to the posterior through the tempered targets

    p_t(u) ∝ prior(u) * likelihood(u) ** lambda_t,      0 = lambda_0 < lambda_1 < ... < lambda_T = 1,

each step (BlackJAX's ``smc.tempered`` kernel) resampling the particles by their weights, moving each with a few
MCMC steps that leave ``p_{t-1}`` invariant and reweighting them by ``likelihood ** (lambda_t - lambda_{t-1})``. The
next temperature is chosen so that the effective sample size of those incremental weights is ``target_ess`` times
the number of particles (BlackJAX's ``smc.ess.ess_solver`` with its dichotomy, the rule of
``blackjax.adaptive_tempered_smc``). Because every particle sees the whole (flattened) landscape early on, the
relative mass of separated modes is set while they still overlap and is then carried along by the weights: this is
what NUTS chains started in different modes cannot do. The product over steps of the mean incremental weights is
an unbiased estimate of the evidence ``Z = ∫ prior * likelihood`` (Del Moral, Doucet & Jasra 2006), so its log,

    log Z = sum_t log( mean_i likelihood(u_i) ** (lambda_t - lambda_{t-1}) )

(BlackJAX's ``SMCInfo.log_likelihood_increment``, summed), is available at no extra cost.

**Mutation tuning.** Before each step the diagonal inverse mass matrix is the weighted variance of the particles
(which, with their weights, represent the current tempered target; Buchholz, Chopin & Jacob 2021), and the step
size is steered by the mean acceptance rate of all particles after every move:
``log eps <- log eps + 2 (acceptance - target_accept)`` (a factor 0.22 at acceptance 0, 1.65 at acceptance 1), carried
over from step to step. Adapting between the moves of one step, not only between steps, matters when the target
narrows quickly: around separated modes the particles' variance measures the distance between the modes rather
than their widths, and a step size tuned at the previous temperature is then far too large. Each particle's step
size is jittered by a uniform factor in ``exp(±0.2)`` so that fixed-length HMC trajectories do not resonate with the
target. Like the temperature schedule, this adaptation from the particles makes the estimates consistent (not
exactly unbiased for ``Z``), as usual for adaptive SMC.

**Final step.** BlackJAX's step reweights *after* the move, so the particles of the last tempering step
(``lambda = 1``) carry weights. One more step at ``lambda = 1`` (zero increment) resamples them (systematic
resampling) and moves them at the posterior, after which all weights are equal (``1 / num_particles``); the
particles of each run are finally put in a random order, so that the particle axis is exchangeable and can be read
as the draw axis of :class:`~vbtjax.inference.NutsResult` (runs as chains: R-hat over runs compares independent
runs).

**Loop.** The tempering loop is a Python loop over one jitted program (all runs vmapped, the particle axis vmapped
inside BlackJAX; the temperature is a traced value, so it compiles once), rather than ``lax.while_loop``: the number
of steps is not known in advance (a while loop would need buffers sized by ``max_steps`` for the paths), each step
costs ``num_particles x num_mcmc_steps x num_integration_steps`` gradient evaluations (seconds to minutes for an
ODE model), so the per-step dispatch is negligible, and the loop can show progress, stop at ``max_steps`` with a
warning and partial results, and be interrupted.

With several devices (``jax.local_devices()``), the runs are sharded over the largest number of them that divides
``num_runs`` (the same shard map as :func:`vbtjax.sweep`, from ``vbtjax._distributed``).
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import blackjax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from blackjax.smc import base as smc_base
from blackjax.smc import ess as smc_ess
from blackjax.smc import resampling, solver, tempered
from jaxtyping import Array

from .posterior import Posterior

__all__ = ["smc", "SMCResult"]

_STEP_GAIN = 2.0  # log step size change per unit of (acceptance - target)
_JITTER = 0.2  # per-particle step sizes: eps * exp(U(-jitter, jitter))
_BAD = -1e30  # value of a non-finite log density, as Posterior.log_density
_POINTWISE_BUDGET = 512 * 2**20  # bytes of pointwise log-likelihoods stored in the result by default


class _RunState(NamedTuple):
    particles: Array  # (N, d)
    weights: Array  # (N,)
    temperature: Array  # ()
    log_step: Array  # () log of the base step size
    imm: Array  # (d,) diagonal inverse mass matrix of the last step
    log_evidence: Array  # () running sum of the log incremental normalising constants


class SMCResult(eqx.Module):
    """Particles of :func:`smc`, the log evidence and the tempering path, ``R`` runs of ``N`` particles.

    **Fields:**
    - `names`: sampled names (parameters then latents).
    - `samples`: name -> ``(runs, particles, *shape)`` constrained values (the layout of
      :class:`~vbtjax.inference.NutsResult` with runs as chains and particles as draws).
    - `positions`: ``(runs, particles, d)`` unconstrained particles, equally weighted.
    - `weights`: ``(runs, particles)`` their normalised weights, all ``1 / particles`` (kept as a check).
    - `log_likelihood`: ``(runs, particles)`` log-likelihood of each particle; `log_prior`: its log prior density
      (unconstrained space, Jacobian included).
    - `log_evidence`: ``(runs,)`` each run's estimate of ``log Z = log ∫ prior * likelihood`` (unconstrained
      space; the normalised prior densities make it the usual evidence).
    - `temperatures`: ``(runs, steps + 1)`` the tempering path from 0; a run that reached 1 before the others stays
      at 1 (its further steps are extra moves at the posterior). `num_steps`: ``(runs,)`` steps each run took to
      reach 1.
    - `ess_path`: ``(runs, steps)`` effective sample size of the incremental weights, as a fraction of the particles;
      `acceptance_path`: mean acceptance rate of the moves; `step_size_path`: base step size of the moves;
      `log_evidence_increments`: ``log mean incremental weight``, whose sum over steps is `log_evidence`;
      `divergences`: divergent transitions per step; `grad_evals`: leapfrog steps of the moves per step (all
      particles; each is one gradient evaluation, plus about 3 evaluations per particle and step outside them).
      The paths include the final zero-increment step.
    - `inverse_mass_matrix`: ``(runs, d)`` diagonal of the last step.
    - `pointwise_log_likelihood`: ``(runs, particles, n_obs)`` per-observation log-likelihoods when the posterior
      has them and they were stored (see :func:`smc`), else ``None``.
    - `completed`: every run reached temperature 1 (``False`` after ``max_steps``: the particles then target the
      last temperature and `log_evidence` is ``log Z(lambda) / Z(0)``).
    - `kernel`, `num_mcmc_steps`: the mutation kernel; `seconds`: wall time.
    """

    names: tuple[str, ...] = eqx.field(static=True)
    samples: dict[str, Array]
    positions: Array
    weights: Array
    log_likelihood: Array
    log_prior: Array
    log_evidence: Array
    temperatures: Array
    num_steps: Array
    ess_path: Array
    acceptance_path: Array
    step_size_path: Array
    log_evidence_increments: Array
    divergences: Array
    grad_evals: Array
    inverse_mass_matrix: Array
    pointwise_log_likelihood: Array | None
    completed: bool = eqx.field(static=True)
    kernel: str = eqx.field(static=True)
    num_mcmc_steps: int = eqx.field(static=True)
    seconds: float = eqx.field(static=True)

    @property
    def num_runs(self) -> int:
        return int(self.positions.shape[0])

    @property
    def num_particles(self) -> int:
        return int(self.positions.shape[1])

    # same names as NutsResult, so that code written for chains x draws works
    @property
    def num_chains(self) -> int:
        return self.num_runs

    @property
    def num_draws(self) -> int:
        return self.num_particles

    @property
    def log_evidence_mean(self) -> float:
        """Mean over runs of the per-run ``log Z``."""
        return float(np.mean(np.asarray(self.log_evidence, dtype=float)))

    @property
    def log_evidence_combined(self) -> float:
        """``log`` of the mean over runs of ``Z``: the pooled estimate (each run's ``Z`` is unbiased, its log is
        biased low by about half its variance), what one run with ``runs x particles`` particles would give."""
        le = np.asarray(self.log_evidence, dtype=float)
        return float(np.logaddexp.reduce(le) - np.log(le.size))

    @property
    def log_evidence_sd(self) -> float:
        """Standard deviation over runs of ``log Z`` (NaN with one run): the Monte Carlo error of one run."""
        le = np.asarray(self.log_evidence, dtype=float)
        return float(np.std(le, ddof=1)) if le.size > 1 else float("nan")

    @property
    def log_evidence_se(self) -> float:
        """Standard error of the pooled ``log Z``: ``log_evidence_sd / sqrt(runs)``."""
        return self.log_evidence_sd / math.sqrt(self.num_runs)

    def evidence(self) -> dict[str, Any]:
        """``{"log_evidence": combined, "mean": mean of logs, "sd": sd over runs, "se": sd / sqrt(runs), "runs":
        per-run values}``."""
        return {
            "log_evidence": self.log_evidence_combined,
            "mean": self.log_evidence_mean,
            "sd": self.log_evidence_sd,
            "se": self.log_evidence_se,
            "runs": np.asarray(self.log_evidence, dtype=float),
        }

    def summary(self, prob: float = 0.9) -> dict[str, dict[str, np.ndarray]]:
        """Posterior mean, sd, quantiles, R-hat over runs and bulk/tail ESS per name (see
        :func:`vbtjax.inference.diagnostics.summary`; runs are the chains, particles the draws), plus ``mcse_runs``,
        the Monte Carlo standard error of the mean from the spread of the runs' means (``sd(run means) /
        sqrt(runs)``; NaN with one run). Particles of a run are correlated through their common ancestors, so
        ``ess_bulk`` (at most ``runs x particles``) is optimistic; ``mcse_runs`` is not."""
        from .diagnostics import summary

        samples = {k: np.asarray(v) for k, v in self.samples.items()}
        out = summary(samples, prob=prob)
        for k, v in samples.items():
            means = v.mean(axis=1)
            if v.shape[0] > 1:
                out[k]["mcse_runs"] = means.std(axis=0, ddof=1) / np.sqrt(v.shape[0])
            else:
                out[k]["mcse_runs"] = np.full(v.shape[2:], np.nan)
        return out

    def to_inference_data(self, posterior: Posterior | None = None, **kwargs: Any):
        """ArviZ ``InferenceData``: ``posterior`` (runs as chains), ``sample_stats`` (``lp``: log prior + log-likelihood
        in unconstrained space, and ``log_prior``),
        ``log_likelihood`` (variable ``obs``, ``(chain, draw, n_obs)``) when the pointwise log-likelihoods are stored
        or `posterior` has them (then computed here, see :func:`vbtjax.inference.comparison.log_likelihood_draws`), and
        a group ``smc`` with the tempering path (``temperature``, ``ess``, ``acceptance_rate``, ``step_size``,
        ``log_evidence_increment`` by ``(chain, smc_step)``; ``log_evidence``, ``num_steps`` by ``chain``). Keyword
        arguments go to :func:`vbtjax.inference.diagnostics.to_inference_data` (``coords``, ``dims``,
        ``observed_data``, ``attrs``)."""
        import xarray as xr

        from .diagnostics import to_inference_data

        stats = {
            "lp": np.asarray(self.log_prior) + np.asarray(self.log_likelihood),
            "log_prior": np.asarray(self.log_prior),
        }
        idata = to_inference_data({k: np.asarray(v) for k, v in self.samples.items()}, sample_stats=stats, **kwargs)
        ll = self.pointwise_log_likelihood
        if ll is None and posterior is not None and posterior.pointwise_log_likelihood is not None:
            from .comparison import log_likelihood_draws

            ll = log_likelihood_draws(posterior, self.positions)
        if ll is not None:
            idata.add_groups(log_likelihood={"obs": np.asarray(ll)}, dims={"obs": ["obs_id"]})
        chain = np.arange(self.num_runs)
        step2 = ("chain", "smc_step")
        smc_group = xr.Dataset(
            {
                "temperature": (("chain", "smc_step_0"), np.asarray(self.temperatures)),
                "ess": (step2, np.asarray(self.ess_path)),
                "acceptance_rate": (step2, np.asarray(self.acceptance_path)),
                "step_size": (step2, np.asarray(self.step_size_path)),
                "log_evidence_increment": (step2, np.asarray(self.log_evidence_increments)),
                "divergences": (step2, np.asarray(self.divergences)),
                "log_evidence": (("chain",), np.asarray(self.log_evidence, dtype=float)),
                "num_steps": (("chain",), np.asarray(self.num_steps)),
            },
            coords={"chain": chain},
            attrs={
                "kernel": self.kernel,
                "num_mcmc_steps": int(self.num_mcmc_steps),
                "num_particles": self.num_particles,
                "completed": int(self.completed),
                "log_evidence_combined": self.log_evidence_combined,
            },
        )
        idata.add_groups(smc=smc_group)
        return idata

    def save(self, path: str | Path, posterior: Posterior | None = None, **kwargs: Any) -> Path:
        """Write :meth:`to_inference_data` as netCDF to ``path`` (read it with ``arviz.from_netcdf``)."""
        from .diagnostics import save_netcdf

        return save_netcdf(self.to_inference_data(posterior, **kwargs), path)


def _finite(f):
    """``f`` with NaN and ±inf replaced by -1e30, as :meth:`Posterior.log_density` does: such points get zero
    weight and are rejected by the moves, and ``0 * loglik`` stays 0 in the zero-increment step."""

    def g(u):
        v = jnp.asarray(f(u))
        return jnp.where(jnp.isfinite(v), v, jnp.asarray(_BAD, v.dtype))

    return g


def _weighted_variance(x: Array, w: Array) -> Array:
    mean = w @ x
    return w @ (x - mean) ** 2


def _adaptive_moves(target_accept: float):
    """A BlackJAX ``update_strategy`` (as ``smc.base.update_and_take_last``): ``num_mcmc_steps`` moves of every
    particle, keeping the last, with the step size adapted between moves from the mean acceptance rate of all
    particles. The moves are vmapped over the particles (or run in ``batch_size`` batches) one move at a time, so that
    the population's acceptance can steer the next move's step size within the same tempering step (a step size
    tuned at the previous temperature can be far off when the target narrows quickly, e.g. around separated
    modes, where the particles' variance reflects the distance between modes rather than their widths)."""

    def strategy(mcmc_init_fn, logposterior_fn, shared_mcmc_step_fn, num_mcmc_steps, n_particles, batch_size=0):
        def move(key, state, eps):
            return shared_mcmc_step_fn(key, state, logposterior_fn, step_size=eps)

        moves = smc_base.map_kernel(move, batch_size)
        init = smc_base.map_fn(lambda x: mcmc_init_fn(x, logposterior_fn), batch_size)

        def update_fn(keys, positions, params):
            log_eps0 = params["log_step_size"][0]
            keys = jax.vmap(lambda k: jax.random.split(k, (num_mcmc_steps, 2)))(keys)  # (N, M, 2)
            keys = jnp.swapaxes(keys, 0, 1)  # (M, N, 2)
            dtype = log_eps0.dtype

            def body(carry, ks):
                states, log_eps = carry
                jit = jax.vmap(lambda k: jax.random.uniform(k, (), dtype, -_JITTER, _JITTER))(ks[:, 1])
                new, info = moves(ks[:, 0], states, jnp.exp(log_eps + jit))
                acc_i = info.acceptance_rate
                acc = jnp.mean(jnp.where(jnp.isfinite(acc_i), acc_i, 0.0)).astype(dtype)
                out = {
                    "acceptance_rate": acc,
                    "step_size": jnp.exp(log_eps),
                    "divergences": jnp.sum(info.is_divergent).astype(jnp.int32),
                    "grad_evals": (jnp.sum(info.num_integration_steps) * jnp.ones(())).astype(jnp.int32),
                }
                return (new, log_eps + _STEP_GAIN * (acc - target_accept)), out

            (last, log_eps), info = jax.lax.scan(body, (init(positions), log_eps0), keys)
            info["final_log_step_size"] = log_eps
            return last.position, info

        return update_fn, n_particles

    return strategy


def _build_step(
    posterior: Posterior,
    *,
    kernel: str,
    num_mcmc_steps: int,
    num_integration_steps: int,
    max_tree_depth: int,
    target_ess: float,
    target_accept: float,
    batch_size: int,
):
    logprior = _finite(posterior.log_prior)
    loglik = _finite(posterior.log_likelihood_at)
    if kernel == "hmc":
        mcmc_step = functools.partial(blackjax.hmc.build_kernel(), num_integration_steps=int(num_integration_steps))
        mcmc_init = blackjax.hmc.init
    else:
        mcmc_step = functools.partial(blackjax.nuts.build_kernel(), max_num_doublings=int(max_tree_depth))
        mcmc_init = blackjax.nuts.init
    smc_kernel = tempered.build_kernel(
        logprior,
        loglik,
        mcmc_step,
        mcmc_init,
        resampling.systematic,
        update_strategy=_adaptive_moves(float(target_accept)),
        batch_size=int(batch_size),
    )
    batched_loglik = smc_base.map_fn(loglik, int(batch_size))

    def one_run(state: _RunState, key: Array, final: Array):
        dtype = state.particles.dtype
        n = state.weights.shape[0]
        # next temperature: ESS of the incremental weights = target_ess * N (adaptive_tempered_smc's rule); none in
        # the final step (it only resamples and moves at the current temperature)
        max_delta = 1.0 - state.temperature
        delta = smc_ess.ess_solver(batched_loglik, state.particles, target_ess, max_delta, solver.dichotomy)
        delta = jnp.clip(jnp.where(jnp.isnan(delta), 0.0, delta), 0.0, max_delta)
        reached = delta >= max_delta
        new_temp = jnp.where(final, state.temperature, jnp.where(reached, 1.0, state.temperature + delta))
        new_temp = new_temp.astype(dtype)
        # the moves target the current temperature, which the weighted particles represent
        var = _weighted_variance(state.particles, state.weights)
        ok = jnp.isfinite(var) & (var > 0)
        imm = jnp.where(ok, jnp.clip(var, 1e-6 * state.imm, 1e6 * state.imm), state.imm)
        # "log_step_size" has the particle axis so that BlackJAX hands it to the update strategy (shared
        # parameters, leading axis 1, are bound into the kernel instead)
        params = {"inverse_mass_matrix": imm[None], "log_step_size": jnp.full((n,), state.log_step)}
        tstate = tempered.TemperedSMCState(state.particles, state.weights, state.temperature)
        new, info = smc_kernel(key, tstate, num_mcmc_steps, new_temp, params)
        moves = info.update_info
        increment = info.log_likelihood_increment.astype(dtype)
        w = new.weights
        log_step = moves["final_log_step_size"]
        out = _RunState(new.particles, w, new_temp, log_step, imm, state.log_evidence + increment)
        record = {
            "temperature": new_temp,
            "ess": (1.0 / jnp.sum(w**2) / n).astype(dtype),
            "acceptance_rate": jnp.mean(moves["acceptance_rate"]),
            "step_size": moves["step_size"][-1],
            "log_evidence_increment": increment,
            "divergences": jnp.sum(moves["divergences"]),
            "grad_evals": jnp.sum(moves["grad_evals"]),
            "finite": jnp.all(jnp.isfinite(new.particles)),
        }
        return out, record

    return one_run


def _placement(num_runs: int, devices):
    """Devices the runs are sharded over: the largest number of ``devices`` (default ``jax.local_devices()``)
    that divides ``num_runs``; ``None`` for one device."""
    devs = list(jax.local_devices() if devices is None else devices)
    if not devs:
        raise ValueError("smc: devices is empty.")
    k = max(i for i in range(1, len(devs) + 1) if num_runs % i == 0)
    if devices is not None and k < len(devs):
        warnings.warn(
            f"smc: num_runs={num_runs} is not a multiple of the {len(devs)} devices; the runs are sharded over "
            f"{k} of them.",
            stacklevel=3,
        )
    return devs[:k] if k > 1 else None


class _Static:
    """The non-array part of a posterior (functions, shapes, Python numbers), a static argument of the compiled
    programs: equal to another when its tree structure and leaves are, so that a later call with the same posterior,
    or one that differs only in array values (data in the network), reuses the compiled programs; compared by
    identity when some leaf is unhashable (then nothing is reused, but everything works)."""

    def __init__(self, static: Any):
        self.static = static
        leaves, treedef = jax.tree.flatten(static)
        key: Any = (treedef, tuple(leaves))
        try:
            hash(key)
        except TypeError:
            key = None
        self._key = key

    def __hash__(self) -> int:
        return hash(self._key) if self._key is not None else id(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Static):
            return NotImplemented
        if self._key is None or other._key is None:
            return self is other
        return self._key == other._key


def _split(posterior: Posterior) -> tuple[Any, _Static]:
    dynamic, static = eqx.partition(posterior, eqx.is_array)
    return dynamic, _Static(static)


@functools.lru_cache(maxsize=64)
def _step_program(settings: tuple, devices: tuple | None):
    """The jitted step of all runs, ``(dynamic, static, state, keys, final) -> (state, record)`` with the posterior
    split into its arrays (traced) and the rest (:class:`_Static`)."""
    kw = dict(settings)

    def vstep(posterior, state, keys, final):
        one_run = _build_step(posterior, **kw)
        return jax.vmap(one_run, in_axes=(0, 0, None))(state, keys, final)

    if devices is None:
        return eqx.filter_jit(
            lambda dynamic, st, state, keys, final: vstep(eqx.combine(dynamic, st.static), state, keys, final)
        )
    from ..simulation import distributed as _distributed

    mesh = _distributed.batch_mesh(list(devices), owner="smc")

    def sharded(dynamic, st, state, keys, final):
        def inner(dynamic, state, keys, final):
            return vstep(eqx.combine(dynamic, st.static), state, keys, final)

        return _distributed.batch_map(inner, mesh, replicated=(True, False, False, True))(dynamic, state, keys, final)

    return eqx.filter_jit(sharded)


@eqx.filter_jit
def _prepare(dynamic, st: _Static, key, u0, num_runs: int, num_particles: int, log_step: float):
    """Keys of the steps, the initial particles (prior draws unless `u0` is given), their log prior, and the
    initial states of the runs."""
    posterior = eqx.combine(dynamic, st.static)
    k_init, k_steps, k_perm = jax.random.split(key, 3)
    runs = jnp.arange(num_runs)
    run_keys = jax.vmap(lambda r: jax.random.fold_in(k_steps, r))(runs)
    if u0 is None:
        u0 = jax.vmap(lambda r: posterior.sample_prior(jax.random.fold_in(k_init, r), num_particles))(runs)
    dtype = u0.dtype
    lp0 = jax.vmap(jax.vmap(_finite(posterior.log_prior)))(u0)
    z = jnp.zeros((num_runs,), dtype)
    state = _RunState(
        u0,
        jnp.full((num_runs, num_particles), 1.0 / num_particles, dtype),
        z,
        jnp.full((num_runs,), log_step, dtype),
        jnp.ones((num_runs, u0.shape[-1]), dtype),
        z,
    )
    ok = jnp.all(jnp.isfinite(u0)) & jnp.all(lp0 > 0.5 * _BAD)
    return state, run_keys, k_perm, ok


@jax.jit
def _fold(keys, step):
    return jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, step)


@eqx.filter_jit
def _finalize(dynamic, st: _Static, particles, weights, k_perm, batch_size: int):
    """Particles in a random order within each run, their log prior and log-likelihood, and constrained values."""
    posterior = eqx.combine(dynamic, st.static)
    r, n, d = particles.shape
    perms = jax.vmap(lambda k: jax.random.permutation(k, n))(jax.random.split(k_perm, r))
    positions = jnp.take_along_axis(particles, perms[..., None], axis=1)
    weights = jnp.take_along_axis(weights, perms, axis=1)
    flat = positions.reshape(-1, d)
    lpr = smc_base.map_fn(_finite(posterior.log_prior), batch_size)(flat).reshape(r, n)
    llk = smc_base.map_fn(_finite(posterior.log_likelihood_at), batch_size)(flat).reshape(r, n)
    samples = jax.vmap(jax.vmap(posterior.constrained))(positions)
    return positions, weights, lpr, llk, samples


def _check_settings(
    posterior, kernel, counts, target_ess, target_accept, initial_step_size, pointwise_log_likelihood
) -> tuple[float, float]:
    """Validate :func:`smc`'s arguments; returns ``(target_accept, initial_step_size)`` with their defaults."""
    num_particles, num_runs, num_mcmc_steps, num_integration_steps, max_steps = counts
    if not isinstance(posterior, Posterior):
        raise TypeError(f"smc: expected a vbtjax.inference.Posterior, got {type(posterior).__name__}.")
    if kernel not in ("hmc", "nuts"):
        raise ValueError(f"smc: kernel must be 'hmc' or 'nuts', got {kernel!r}.")
    if num_particles < 2 or num_runs < 1 or num_mcmc_steps < 1 or max_steps < 1 or num_integration_steps < 1:
        raise ValueError(
            "smc: need num_particles >= 2, num_runs >= 1, num_mcmc_steps >= 1, num_integration_steps >= 1 and "
            f"max_steps >= 1, got {num_particles}, {num_runs}, {num_mcmc_steps}, {num_integration_steps}, "
            f"{max_steps}."
        )
    if not 0.0 < target_ess < 1.0:
        raise ValueError(f"smc: target_ess must lie in (0, 1), got {target_ess}.")
    if target_accept is None:
        target_accept = 0.75 if kernel == "hmc" else 0.8
    if not 0.0 < target_accept < 1.0:
        raise ValueError(f"smc: target_accept must lie in (0, 1), got {target_accept}.")
    d = posterior.dim
    if d < 1:
        raise ValueError("smc: the posterior has no sampled parameters.")
    if pointwise_log_likelihood and posterior.pointwise_log_likelihood is None:
        raise ValueError("smc: pointwise_log_likelihood=True but the posterior has no pointwise log-likelihood.")
    if initial_step_size is None:
        initial_step_size = float(d) ** -0.25
    if not initial_step_size > 0:
        raise ValueError(f"smc: initial_step_size must be positive, got {initial_step_size}.")
    return target_accept, initial_step_size


def _initial_particles(init, num_runs: int, num_particles: int, d: int):
    """`init` checked and broadcast to ``(num_runs, num_particles, d)``, or ``None`` (prior draws)."""
    if init is None:
        return None
    else:
        u0 = jnp.asarray(init, dtype=float)
        if u0.shape == (num_particles, d):
            u0 = jnp.broadcast_to(u0, (num_runs, num_particles, d))
        if u0.shape != (num_runs, num_particles, d):
            raise ValueError(
                f"smc: init has shape {u0.shape}; expected (num_particles, d) = ({num_particles}, {d}) or "
                f"(num_runs, num_particles, d) = ({num_runs}, {num_particles}, {d})."
            )
        if not bool(jnp.all(jnp.isfinite(u0))):
            raise ValueError("smc: the initial particles contain NaN or inf.")
    return u0


def _temper(step_fn, state, run_keys, num_runs: int, max_steps: int, progress: bool):
    """Tempering steps until every run reaches temperature 1 (or `max_steps`), then one more resample and move at
    the last temperature; returns ``(state, records of each step, completed)``."""
    records: list[dict[str, np.ndarray]] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        # the bar shows the lowest temperature of the runs (0-100 %); the description the last step's statistics
        bar = tqdm(total=100, desc="SMC", dynamic_ncols=True, bar_format="{desc} |{bar}| {n_fmt}% [{elapsed}]")
    temps = np.zeros(num_runs)
    step = 0
    try:
        while step < max_steps and not np.all(temps >= 1.0):
            state, rec = step_fn(state, _fold(run_keys, step), False)
            rec = {k: np.asarray(v) for k, v in rec.items()}
            records.append(rec)
            temps = rec["temperature"]
            step += 1
            if not np.all(rec["finite"]):
                raise FloatingPointError("smc: a particle reached a non-finite position; check the log density.")
            if bar is not None:
                bar.n = int(100 * float(np.min(temps)))
                bar.set_description_str(
                    f"SMC step {step}: lambda={np.min(temps):.3g} acc={rec['acceptance_rate'].mean():.2f} "
                    f"eps={rec['step_size'].mean():.3g} ess={rec['ess'].mean():.2f}"
                )
        completed = bool(np.all(temps >= 1.0))
        if not completed:
            warnings.warn(
                f"smc: max_steps={max_steps} reached before temperature 1 (lowest temperature {np.min(temps):.3g}); "
                "the particles target the tempered posterior and log_evidence is not the evidence. Raise max_steps "
                "(or lower target_ess).",
                RuntimeWarning,
                stacklevel=3,
            )
        # resample and move once more at the last temperature: equally weighted particles
        state, rec = step_fn(state, _fold(run_keys, step), True)
        records.append({k: np.asarray(v) for k, v in rec.items()})
        if bar is not None:
            bar.n = int(100 * float(np.min(temps)))
            bar.set_description_str(f"SMC done: {step} steps, log Z = {np.mean(np.asarray(state.log_evidence)):.4g}")
    finally:
        if bar is not None:
            bar.close()
    from ..simulation import distributed as _distributed

    state = _distributed.to_host(state)
    if np.any(np.asarray(state.log_evidence) < 0.5 * _BAD):
        warnings.warn(
            "smc: in some run every particle had a NaN or -inf likelihood at some step; its log_evidence is "
            "meaningless (check the likelihood at prior draws, e.g. with posterior.sample_prior).",
            RuntimeWarning,
            stacklevel=3,
        )
    return state, records, completed


def _pointwise(posterior, positions, pointwise_log_likelihood, num_draws: int, dtype):
    """The per-observation log-likelihoods of the final particles, when asked for or within the memory budget."""
    pointwise = None
    if posterior.pointwise_log_likelihood is not None and pointwise_log_likelihood is not False:
        u_one = jax.ShapeDtypeStruct((posterior.dim,), dtype)
        n_obs = int(np.prod(jax.eval_shape(posterior.pointwise_log_likelihood_at, u_one).shape))
        size = num_draws * n_obs * np.dtype(dtype).itemsize
        if pointwise_log_likelihood or size <= _POINTWISE_BUDGET:
            from .comparison import log_likelihood_draws

            pointwise = jnp.asarray(log_likelihood_draws(posterior, positions))
        else:
            warnings.warn(
                f"smc: not storing the pointwise log-likelihoods ({size / 2**20:.0f} MB); pass "
                "pointwise_log_likelihood=True, or compute them with vbtjax.inference.comparison.log_likelihood_draws.",
                stacklevel=3,
            )
    return pointwise


def _placed_program(dynamic, st: _Static, state, run_keys, settings: tuple, num_runs: int, devices):
    """The compiled tempering step as ``step_fn(state, keys, final)``, with the state and keys sharded over the
    devices (when more than one)."""
    placed = _placement(num_runs, devices)
    program = _step_program(settings, None if placed is None else tuple(placed))
    if placed is not None:
        from jax.sharding import NamedSharding

        from ..simulation import distributed as _distributed

        mesh = _distributed.batch_mesh(placed, owner="smc")
        sharding = NamedSharding(mesh, _distributed.batch_spec(mesh))
        state = jax.device_put(state, sharding)
        run_keys = jax.device_put(run_keys, sharding)

    def step_fn(state, keys, final):
        return program(dynamic, st, state, keys, jnp.asarray(final))

    return step_fn, state, run_keys


def _paths(records, num_runs: int):
    """Per-step records stacked to ``(R, steps)``, the temperatures from 0 ``(R, steps + 1)`` and each run's steps
    to temperature 1."""
    paths = {k: np.stack([r[k] for r in records], axis=1) for k in records[0] if k != "finite"}  # (R, steps)
    temperatures = np.concatenate([np.zeros((num_runs, 1), paths["temperature"].dtype), paths["temperature"]], axis=1)
    num_steps = np.where(
        np.any(temperatures >= 1.0, axis=1), np.argmax(temperatures >= 1.0, axis=1), temperatures.shape[1] - 1
    )
    return paths, temperatures, num_steps


def smc(
    posterior: Posterior,
    *,
    key: jax.Array,
    num_particles: int = 1000,
    num_runs: int = 4,
    num_mcmc_steps: int = 10,
    target_ess: float = 0.5,
    kernel: str = "hmc",
    num_integration_steps: int = 10,
    max_tree_depth: int = 6,
    target_accept: float | None = None,
    initial_step_size: float | None = None,
    init: Any = None,
    progress: bool = True,
    max_steps: int = 500,
    batch_size: int = 0,
    devices: Any = None,
    pointwise_log_likelihood: bool | None = None,
) -> SMCResult:
    """Sample a :class:`~vbtjax.inference.Posterior` with adaptive tempered SMC and estimate its log evidence.

    **Arguments:**
    - `posterior`: the target; its prior (:meth:`~Posterior.log_prior`, which must be a normalised density for
      ``log Z`` to be the evidence, as NumPyro priors are) is tempered towards the posterior by the likelihood
      (:meth:`~Posterior.log_likelihood_at`); NaN and ±inf count as ``-1e30`` (zero weight, rejected moves).
    - `key`: ``jax.random`` key; the same key gives the same particles (whatever the device count).
    - `num_particles` ``N``; `num_runs` ``R``: independent runs (own prior draws and random numbers), vmapped (and
      sharded over `devices`); their spread measures the Monte Carlo error of ``log Z`` and of the mode weights,
      and R-hat over runs checks that they agree.
    - `num_mcmc_steps`: moves per particle and tempering step (the last is kept).
    - `target_ess`: fraction of ``N`` that the effective sample size of each step's incremental weights is set to
      (smaller: fewer, larger temperature steps; each step then leans more on the moves).
    - `kernel`: ``"hmc"`` (fixed ``num_integration_steps`` leapfrog steps, the default: every particle costs the
      same, which suits vmapped ODE solves) or ``"nuts"`` (BlackJAX's NUTS with at most ``2**max_tree_depth``
      leapfrog steps; under vmap every particle waits for the longest trajectory).
    - `target_accept`: acceptance rate the step size is steered towards (default 0.75 for HMC, 0.8 for NUTS).
    - `initial_step_size`: step size of the first move, in units of the particles' standard deviations (default
      ``d ** -0.25``).
    - `init`: initial particles (unconstrained), ``(N, d)`` (the same for every run) or ``(R, N, d)``; they must be
      draws from the prior for ``log Z`` to be the evidence. Default: ``posterior.sample_prior`` per run.
    - `progress`: a progress bar with the lowest temperature of the runs, acceptance, step size and ESS.
    - `max_steps`: most tempering steps; a run that has not reached temperature 1 by then is stopped with a warning
      (`completed` is ``False``).
    - `batch_size`: ``> 0`` moves and weighs the particles in sequential batches of that size (``jax.lax.map``,
      BlackJAX's ``batch_size``) to bound memory (the gradients of ODE solves of all particles at once may not
      fit); 0 vmaps all of them.
    - `devices`: devices the runs are sharded over (default: all local devices; one device: no sharding).
    - `pointwise_log_likelihood`: store the per-observation log-likelihoods of the final particles for LOO/WAIC
      (``None``: when the posterior has them and they take at most 512 MB).

    **Returns:** an :class:`SMCResult`.

    Cost: about ``steps x N x R x (num_mcmc_steps x num_integration_steps + 3)`` log-density evaluations (with
    gradient for the moves), where ``steps`` grows with the information the data carry (roughly with the
    Kullback-Leibler divergence from prior to posterior divided by ``-log target_ess``). The step is compiled once
    per posterior and settings, and reused by later calls with the same posterior (its arrays are arguments of
    the compiled program).
    """
    counts = (num_particles, num_runs, num_mcmc_steps, num_integration_steps, max_steps)
    target_accept, initial_step_size = _check_settings(
        posterior, kernel, counts, target_ess, target_accept, initial_step_size, pointwise_log_likelihood
    )
    d = posterior.dim
    u0 = _initial_particles(init, num_runs, num_particles, d)
    dynamic, st = _split(posterior)
    state, run_keys, k_perm, ok = _prepare(
        dynamic, st, key, u0, int(num_runs), int(num_particles), float(np.log(initial_step_size))
    )
    if not bool(ok):
        raise ValueError(
            "smc: the log prior is -inf or NaN at some initial particles; start from draws of the prior (init=None)."
        )
    dtype = state.particles.dtype
    settings = (
        ("kernel", kernel),
        ("num_mcmc_steps", int(num_mcmc_steps)),
        ("num_integration_steps", int(num_integration_steps)),
        ("max_tree_depth", int(max_tree_depth)),
        ("target_ess", float(target_ess)),
        ("target_accept", float(target_accept)),
        ("batch_size", int(batch_size)),
    )
    step_fn, state, run_keys = _placed_program(dynamic, st, state, run_keys, settings, num_runs, devices)
    t_start = time.perf_counter()
    state, records, completed = _temper(step_fn, state, run_keys, num_runs, max_steps, progress)
    seconds = time.perf_counter() - t_start
    paths, temperatures, num_steps = _paths(records, num_runs)

    positions, weights, lpr, llk, samples = _finalize(
        dynamic, st, jnp.asarray(state.particles), jnp.asarray(state.weights), k_perm, int(batch_size)
    )
    pointwise = _pointwise(posterior, positions, pointwise_log_likelihood, num_runs * num_particles, dtype)

    return SMCResult(
        names=tuple(posterior.names),
        samples=dict(samples),
        positions=positions,
        weights=weights,
        log_likelihood=llk,
        log_prior=lpr,
        log_evidence=jnp.asarray(state.log_evidence),
        temperatures=jnp.asarray(temperatures),
        num_steps=jnp.asarray(num_steps),
        ess_path=jnp.asarray(paths["ess"]),
        acceptance_path=jnp.asarray(paths["acceptance_rate"]),
        step_size_path=jnp.asarray(paths["step_size"]),
        log_evidence_increments=jnp.asarray(paths["log_evidence_increment"]),
        divergences=jnp.asarray(paths["divergences"]),
        grad_evals=jnp.asarray(paths["grad_evals"]),
        inverse_mass_matrix=jnp.asarray(state.imm),
        pointwise_log_likelihood=pointwise,
        completed=completed,
        kernel=kernel,
        num_mcmc_steps=int(num_mcmc_steps),
        seconds=seconds,
    )
