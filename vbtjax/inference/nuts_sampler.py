"""The No-U-Turn Sampler (BlackJAX's NUTS kernel) with Stan's window adaptation, several chains in parallel
(``jax.vmap``), progress, and checkpoints that a resumed run continues exactly.

Warmup follows Stan (Carpenter et al. 2017; Hoffman & Gelman 2014): a fast window adapting the step size by dual
averaging, slow windows of doubling size estimating a diagonal inverse mass matrix (Welford, regularised towards
1e-3 as Stan does) with the step size adaptation restarted after each, and a final fast window. It is written here
on top of ``blackjax.nuts``'s public kernel (rather than ``blackjax.window_adaptation``, which runs the whole
warmup in one call) so that warmup too runs in blocks: a progress bar moves, and a run killed mid-warmup resumes
from its last checkpoint. Every random number comes from ``fold_in(fold_in(key, chain), step)``, so a resumed run
draws exactly the samples of an uninterrupted one.

Below :func:`nuts` lies a low-level API in BlackJAX's shape for samplers that write their own loops: one chain's
:class:`ChainState` (:func:`init`) and NUTS transition (:func:`step`), Stan's adaptation (:func:`warmup_schedule`,
:class:`AdaptationState`, :func:`adapt_init`, :func:`adapt_update`, :func:`final_step_size`). :func:`nuts`,
:func:`~vbtjax.inference.sbc` and :func:`~vbtjax.inference.gibbs.nuts_within_gibbs` are built on it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import blackjax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ..files import read_npz, write_npz
from .fitting import Resumed, ResumeError, check_resume, key_data
from .posterior import Posterior

__all__ = [
    "nuts",
    "NutsResult",
    "warmup_schedule",
    "ChainState",
    "AdaptationState",
    "init",
    "step",
    "adapt_init",
    "adapt_update",
    "final_step_size",
]

CHECKPOINT_NAME = "nuts_checkpoint.npz"
_STATS = ("diverging", "acceptance_rate", "n_steps", "tree_depth", "lp", "energy")

# dual averaging constants of Stan / Hoffman & Gelman (2014)
_DA_GAMMA, _DA_T0, _DA_KAPPA = 0.05, 10.0, 0.75


def warmup_schedule(num_warmup: int) -> tuple[np.ndarray, np.ndarray]:
    """Stan's warmup windows: ``(slow, window_end)``, two ``(num_warmup,)`` bool arrays.

    ``slow[s]``: step ``s`` lies in a slow window (its position feeds the mass-matrix estimate); ``window_end[s]``:
    the mass matrix is updated after step ``s``. Windows: an initial fast buffer of 75 steps, slow windows of 25,
    50, 100, ... steps (the last one stretched to the terminal buffer), a terminal fast buffer of 50 steps; with
    fewer than 150 warmup steps, 15 % / 75 % / 10 % as Stan does; below 20 steps only the step size is adapted.
    """
    n = int(num_warmup)
    slow = np.zeros(n, bool)
    end = np.zeros(n, bool)
    if n < 20:
        return slow, end
    init_buf, term_buf, window = 75, 50, 25
    if init_buf + window + term_buf > n:
        init_buf, term_buf = int(0.15 * n), int(0.1 * n)
        window = n - init_buf - term_buf
    start, size, final_start = init_buf, window, n - term_buf
    while start < final_start:
        if 3 * size <= final_start - start:
            next_size = 2 * size
        else:
            size = final_start - start
            next_size = size
        slow[start : start + size] = True
        end[start + size - 1] = True
        start += size
        size = next_size
    return slow, end


class AdaptationState(NamedTuple):
    """The state of Stan's warmup adaptation of one chain (:func:`adapt_init`, :func:`adapt_update`).

    **Fields:** `log_eps`: log of the current step size (the dual-averaging iterate); `log_eps_bar`: its running
    average (the step size for sampling, :func:`final_step_size`); `h_bar`, `mu`, `t`: dual averaging's statistic,
    shrinkage target and step count in the current window; `w_count`, `w_mean`, `w_m2`: Welford's count, mean and
    sum of squared deviations of the positions in the current slow window; `imm`: the inverse mass matrix (diagonal
    ``(d,)``, or dense ``(d, d)`` when given so and not adapted).
    """

    log_eps: Array
    log_eps_bar: Array
    h_bar: Array
    mu: Array
    t: Array
    w_count: Array
    w_mean: Array
    w_m2: Array
    imm: Array


class ChainState(NamedTuple):
    """The state of one chain: the unconstrained `position` ``(d,)``, the log density there and its gradient."""

    position: Array
    logdensity: Array
    grad: Array


class NutsResult(eqx.Module):
    """Draws of :func:`nuts` with the sampler's statistics.

    **Fields:**
    - `names`: sampled names (parameters then latents).
    - `samples`: name -> ``(chains, draws, *shape)`` constrained draws.
    - `positions`: ``(chains, draws, d)`` unconstrained draws.
    - `stats`: name -> ``(chains, draws)``: ``diverging``, ``acceptance_rate``, ``n_steps`` (leapfrog steps),
      ``tree_depth``, ``lp`` (log density of the draw, unconstrained space), ``energy``.
    - `step_size`: ``(chains,)`` adapted step sizes; `inverse_mass_matrix`: ``(chains, d)`` (diagonal).
    - `warmup_stats`: name -> ``(chains, num_warmup)``: ``step_size``, ``acceptance_rate``, ``diverging``.
    - `seconds`: wall time of warmup and sampling in this process (a resumed run counts only its own part).
    - `resumed`: one :class:`~vbtjax.inference.fitting.Resumed` record per resume from a checkpoint (empty when none).
    """

    names: tuple[str, ...] = eqx.field(static=True)
    samples: dict[str, Array]
    positions: Array
    stats: dict[str, Array]
    step_size: Array
    inverse_mass_matrix: Array
    warmup_stats: dict[str, Array]
    seconds: float = eqx.field(static=True)
    resumed: tuple[Resumed, ...] = eqx.field(static=True, default=())

    @property
    def num_chains(self) -> int:
        return int(self.positions.shape[0])

    @property
    def num_draws(self) -> int:
        return int(self.positions.shape[1])

    def summary(self, prob: float = 0.9) -> dict[str, dict[str, np.ndarray]]:
        """Posterior mean, sd, quantiles, split R-hat and bulk/tail ESS per name (see
        :func:`vbtjax.inference.diagnostics.summary`)."""
        from .diagnostics import summary

        return summary({k: np.asarray(v) for k, v in self.samples.items()}, prob=prob)

    def to_inference_data(self, **kwargs: Any):
        """ArviZ ``InferenceData`` (posterior + sample_stats); keyword arguments go to
        :func:`vbtjax.inference.diagnostics.to_inference_data` (``coords``, ``dims``, ``observed_data``, ``attrs``)."""
        from .diagnostics import to_inference_data

        stats = {k: np.asarray(v) for k, v in self.stats.items()}
        stats["step_size"] = np.broadcast_to(np.asarray(self.step_size)[:, None], stats["lp"].shape).copy()
        return to_inference_data({k: np.asarray(v) for k, v in self.samples.items()}, sample_stats=stats, **kwargs)

    def save(self, path: str | Path, **kwargs: Any) -> Path:
        """Write the ``InferenceData`` as netCDF to ``path``."""
        from .diagnostics import save_netcdf

        return save_netcdf(self.to_inference_data(**kwargs), path)


def _da_update(a: AdaptationState, acc: Array, target: float) -> AdaptationState:
    t = a.t + 1.0
    eta = 1.0 / (t + _DA_T0)
    h_bar = (1.0 - eta) * a.h_bar + eta * (target - acc)
    log_eps = a.mu - jnp.sqrt(t) / _DA_GAMMA * h_bar
    w = t ** (-_DA_KAPPA)
    log_eps_bar = w * log_eps + (1.0 - w) * a.log_eps_bar
    return a._replace(log_eps=log_eps, log_eps_bar=log_eps_bar, h_bar=h_bar, t=t)


def _da_restart(a: AdaptationState, log_eps: Array) -> AdaptationState:
    z = jnp.zeros_like(a.t)
    return a._replace(log_eps=log_eps, log_eps_bar=z, h_bar=z, mu=jnp.log(10.0) + log_eps, t=z)


# ----------------------------------------------------------------------------------------------------------------
# the low-level API: one chain's kernel and adaptation, for samplers that write their own loops (nuts() below, SBC's
# vectorised program, NUTS within Gibbs); vmap over chains, scan over steps


def init(position: Array, logdensity: Callable[[Array], Array]) -> ChainState:
    """The :class:`ChainState` at `position` ``(d,)``: the log density there and its gradient."""
    state = blackjax.nuts.init(position, logdensity)
    return ChainState(state.position, state.logdensity, state.logdensity_grad)


def step(
    key: jax.Array,
    state: ChainState,
    logdensity: Callable[[Array], Array],
    step_size: Array,
    inverse_mass_matrix: Array,
    *,
    max_tree_depth: int = 10,
) -> tuple[ChainState, Any, Array]:
    """One NUTS transition of one chain (BlackJAX's kernel) with the key `key`.

    **Returns:** ``(state, info, acceptance)``: the new :class:`ChainState`, BlackJAX's ``NUTSInfo``
    (``is_divergent``, ``num_integration_steps``, ``num_trajectory_expansions``, ``energy``, ...) and the acceptance
    rate in the position's dtype, NaN counted as 0 (what :func:`adapt_update` takes)."""
    kernel = blackjax.nuts.build_kernel()
    bstate = blackjax.mcmc.hmc.HMCState(state.position, state.logdensity, state.grad)
    new, info = kernel(key, bstate, logdensity, step_size, inverse_mass_matrix, max_num_doublings=max_tree_depth)
    acc = jnp.where(jnp.isfinite(info.acceptance_rate), info.acceptance_rate, 0.0).astype(state.position.dtype)
    return ChainState(new.position, new.logdensity, new.logdensity_grad), info, acc


def adapt_init(dim: int, dtype: Any, initial_step_size: float) -> AdaptationState:
    """The :class:`AdaptationState` before warmup: step size `initial_step_size`, identity inverse mass matrix
    ``(dim,)``."""
    le = jnp.asarray(np.log(initial_step_size), dtype)
    z = jnp.zeros((), dtype)
    zeros = jnp.zeros(dim, dtype)
    return AdaptationState(le, z, z, jnp.log(10.0) + le, z, z, zeros, zeros, jnp.ones(dim, dtype))


def adapt_update(
    state: AdaptationState,
    position: Array,
    acceptance: Array,
    slow: Array,
    window_end: Array,
    *,
    target_accept: float = 0.8,
    adapt_mass_matrix: bool = True,
) -> AdaptationState:
    """One warmup step of Stan's adaptation after a transition to `position` with acceptance rate `acceptance`:
    dual averaging of the step size towards `target_accept`; Welford on `position` when `slow`; when `window_end`
    (and `adapt_mass_matrix`) the regularised variance becomes the inverse mass matrix and dual averaging
    restarts. `slow` and `window_end` come from :func:`warmup_schedule`. The next step size is
    ``exp(state.log_eps)``."""
    a = _da_update(state, acceptance, target_accept)
    cnt = a.w_count + 1.0
    delta = position - a.w_mean
    mean = a.w_mean + delta / cnt
    m2 = a.w_m2 + delta * (position - mean)
    a = a._replace(
        w_count=jnp.where(slow, cnt, a.w_count),
        w_mean=jnp.where(slow, mean, a.w_mean),
        w_m2=jnp.where(slow, m2, a.w_m2),
    )
    if not adapt_mass_matrix:
        return a

    def end_window(a):
        n = a.w_count
        var = a.w_m2 / jnp.maximum(n - 1.0, 1.0)
        var = (n / (n + 5.0)) * var + 1e-3 * (5.0 / (n + 5.0))
        zero = jnp.zeros_like(a.w_mean)
        a = a._replace(imm=var, w_count=jnp.zeros_like(n), w_mean=zero, w_m2=zero)
        return _da_restart(a, a.log_eps_bar)

    return jax.lax.cond(window_end, end_window, lambda a: a, a)


def final_step_size(state: AdaptationState, num_warmup: int) -> Array:
    """Step size used for sampling: the dual-averaging average of the last window (the initial step size when
    there was no warmup)."""
    if num_warmup == 0:
        return jnp.exp(state.log_eps)
    return jnp.exp(jnp.where(state.t > 0, state.log_eps_bar, state.log_eps))


# ----------------------------------------------------------------------------------------------------------------
# nuts(): the high-level sampler


def _resolve(target, init, num_chains, key, init_jitter):
    if isinstance(target, Posterior):
        logdensity = target.log_density
        names = target.names
        to_constrained = target.constrained
        if init is None or (isinstance(init, str) and init == "network"):
            u0 = jnp.broadcast_to(target.initial_position(), (num_chains, target.dim))
            jitter = init_jitter
        elif isinstance(init, str) and init == "prior":
            u0 = target.sample_prior(jax.random.fold_in(key, 2**20), num_chains)
            jitter = 0.0
        else:
            u0 = jnp.asarray(init, dtype=float)
            jitter = 0.0
        d = target.dim
    elif callable(target):
        if init is None or isinstance(init, str):
            raise ValueError("nuts: with a plain log-density function give init=, a (d,) or (num_chains, d) array.")
        logdensity = target
        u0 = jnp.asarray(init, dtype=float)
        d = u0.shape[-1]
        names = ("u",)
        to_constrained = lambda u: {"u": u}  # noqa: E731
        jitter = init_jitter if u0.ndim == 1 else 0.0
    else:
        raise TypeError(f"nuts: expected a Posterior or a log-density function, got {type(target).__name__}.")
    if u0.ndim == 1:
        u0 = jnp.broadcast_to(u0, (num_chains, d))
    if u0.shape != (num_chains, d):
        raise ValueError(f"nuts: init has shape {u0.shape}; expected ({d},) or (num_chains={num_chains}, {d}).")
    if jitter:
        u0 = u0 + jitter * jax.random.normal(jax.random.fold_in(key, 2**21), u0.shape, u0.dtype)
    if not bool(jnp.all(jnp.isfinite(u0))):
        raise ValueError("nuts: the initial positions contain NaN or inf.")
    return logdensity, names, to_constrained, u0, d


def nuts(
    target: Posterior | Callable[[Array], Array],
    *,
    key: jax.Array,
    num_chains: int = 4,
    num_warmup: int = 500,
    num_samples: int = 500,
    init: Any = None,
    init_jitter: float = 0.1,
    target_accept: float = 0.8,
    max_tree_depth: int = 10,
    initial_step_size: float = 0.1,
    inverse_mass_matrix: Any = None,
    adapt_mass_matrix: bool = True,
    preconditioner: tuple[Any, Any] | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 50,
    progress: bool = True,
) -> NutsResult:
    """Sample a :class:`~vbtjax.inference.Posterior` (or any log density over a flat ``(d,)`` vector) with NUTS.

    **Arguments:**
    - `target`: a :class:`Posterior`, or a function ``u (d,) -> log density`` (then `init` is required).
    - `key`: ``jax.random`` key; the same key gives the same draws.
    - `num_chains`: chains run in parallel with ``jax.vmap``; `num_warmup`, `num_samples`: steps per chain.
    - `init`: ``None``/``"network"``: the network's current values plus ``init_jitter`` x N(0, 1) in unconstrained
      space per chain; ``"prior"``: one prior draw per chain; or an array ``(d,)`` / ``(num_chains, d)`` of
      unconstrained positions.
    - `target_accept`: dual-averaging target of the mean acceptance probability (0.8; raise it to 0.9-0.95 when
      there are divergences). `max_tree_depth`: at most ``2**max_tree_depth`` leapfrog steps per draw.
    - `initial_step_size`; `inverse_mass_matrix`: the diagonal ``(d,)`` or ``(num_chains, d)`` used until the first
      slow window ends (default ones), or a dense ``(d, d)`` matrix (with ``adapt_mass_matrix=False``), e.g. the
      inverse Hessian at the posterior mode, which shortens the first
      trajectories when the parameters' posterior scales differ by orders of magnitude.
    - `adapt_mass_matrix`: estimate the diagonal inverse mass matrix in Stan's slow windows (default); ``False``
      keeps `inverse_mass_matrix` and adapts only the step size (better when warmup is short and the given matrix
      is good: a chain that has barely moved underestimates the variances).
    - `preconditioner`: ``(centre (d,), factor (d, d))``: the chains move in ``z`` with ``u = centre + factor @ z``
      (e.g. the mode and a Cholesky factor of the inverse Hessian there), and the diagonal mass matrix is adapted in
      ``z``. Equivalent to a dense mass matrix ``factor @ factor.T``, but it stays well conditioned in float32
      when the posterior's scales span many orders of magnitude. `init`, the draws and ``positions`` are in ``u``.
    - `checkpoint`: a folder; the state is written to ``checkpoint/nuts_checkpoint.npz`` every `checkpoint_every`
      steps (atomically), and a later call with the same arguments resumes from it and returns exactly the draws
      of an uninterrupted run. A checkpoint written with other settings (key, chains, warmup, tree depth, step size
      and mass matrix settings, the target: its starting points and log density there) raises
      :class:`~vbtjax.inference.fitting.ResumeError` naming each that differs (``num_chains 4 -> 2``). `num_samples`
      may change: more draws continue the chains, fewer keep the first ones (both exactly the draws of an
      uninterrupted run with that many); the change is recorded in :attr:`NutsResult.resumed`. `checkpoint_every`
      may change too.
    - `progress`: a progress bar with the phase, step sizes, divergences and acceptance.

    **Returns:** a :class:`NutsResult`.
    """
    if num_chains < 1 or num_samples < 1 or num_warmup < 0:
        raise ValueError(
            f"nuts: need num_chains >= 1, num_samples >= 1 and num_warmup >= 0, got {num_chains}, {num_samples}, "
            f"{num_warmup}."
        )
    if not 0.0 < target_accept < 1.0:
        raise ValueError(f"nuts: target_accept must lie in (0, 1), got {target_accept}.")
    if checkpoint_every < 1:
        raise ValueError(f"nuts: checkpoint_every must be >= 1, got {checkpoint_every}.")
    logdensity, names, to_constrained, u0, d = _resolve(target, init, num_chains, key, init_jitter)
    dtype = u0.dtype
    to_u = lambda z: z  # noqa: E731
    if preconditioner is not None:
        logdensity, u0, to_u = _precondition(preconditioner, logdensity, u0, d)
    slow_np, end_np = warmup_schedule(num_warmup)
    if not adapt_mass_matrix:
        slow_np, end_np = np.zeros_like(slow_np), np.zeros_like(end_np)
    run_block = _block_runner(logdensity, int(max_tree_depth), target_accept, adapt_mass_matrix)
    keys = jax.vmap(lambda c: jax.random.fold_in(key, c))(jnp.arange(num_chains))
    settings = {
        "num_chains": num_chains,
        "num_warmup": num_warmup,
        "num_samples": num_samples,
        "dim": d,
        "target_accept": target_accept,
        "max_tree_depth": int(max_tree_depth),
        "initial_step_size": initial_step_size,
        "inverse_mass_matrix": None if inverse_mass_matrix is None else np.asarray(inverse_mass_matrix).tolist(),
        "adapt_mass_matrix": bool(adapt_mass_matrix),
        "preconditioner": None if preconditioner is None else float(np.round(np.sum(np.abs(to_u(u0[0]))), 5)),
        "names": list(names),
        "key": key_data(key)[0].tolist(),
        "dtype": str(dtype),
    }
    ckpt, state = _open_checkpoint(checkpoint, settings, logdensity, u0)
    if state is None:
        state = _SamplerState.initial(
            logdensity, u0, d, dtype, initial_step_size, inverse_mass_matrix, adapt_mass_matrix, num_chains
        )
    t_start = time.perf_counter()
    _sample(
        state, run_block, keys, slow_np, end_np, num_warmup + num_samples, checkpoint_every, ckpt, settings, progress
    )
    return state.result(names, to_u, to_constrained, num_warmup, num_samples, time.perf_counter() - t_start)


def _open_checkpoint(checkpoint, settings: dict[str, Any], logdensity, u0) -> tuple[Path | None, Any]:
    """``(path of the checkpoint file or None, the state it holds or None)``; adds to `settings` the target's
    fingerprint: the starting points and the log density there (another target or other data must not be continued)."""
    if checkpoint is None:
        return None, None
    lp0 = np.asarray(jax.jit(jax.vmap(logdensity))(u0), dtype=float)
    settings["fingerprint"] = [float(np.round(np.sum(np.asarray(u0, dtype=float)), 6))] + [
        float(f"{v:.7g}") for v in lp0
    ]
    ckpt = Path(checkpoint) / CHECKPOINT_NAME
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    return ckpt, (_SamplerState.load(ckpt, settings) if ckpt.exists() else None)


def _sample(state, run_block, keys, slow_np, end_np, total: int, every: int, ckpt, settings, progress: bool) -> None:
    """Warmup and sampling blocks from ``state.step`` to `total`, each followed by a checkpoint."""
    num_warmup = len(slow_np)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=min(state.step, total), desc="NUTS", unit="step", dynamic_ncols=True)
    try:
        while state.step < total:
            if state.step < num_warmup:
                status = state.warmup_block(run_block, keys, slow_np, end_np, every)
            else:
                status = state.sampling_block(run_block, keys, num_warmup, total, every)
            if ckpt is not None:
                state.save(ckpt, settings)
            if bar is not None:
                bar.update(status[0])
                bar.set_postfix_str(status[1])
    finally:
        if bar is not None:
            bar.close()


def _block_runner(logdensity, depth: int, target_accept: float, adapt_mass_matrix: bool):
    """The jitted function that advances every chain over a block of steps (warmup or sampling)."""

    def one_step(carry, xs, warm):
        # warmup and sampling share this body (and so one compilation of the kernel and the log density's
        # gradient): in warmup the step size and mass matrix come from the adaptation state, which is updated; in
        # sampling they are the fixed ones in the carry and the adaptation state is left as it is
        chain, a, key_c, eps_fixed, imm_fixed = carry
        s, slow, end = xs
        eps = jnp.where(warm, jnp.exp(a.log_eps), eps_fixed)
        imm = jnp.where(warm, a.imm, imm_fixed)
        chain, info, acc = step(jax.random.fold_in(key_c, s), chain, logdensity, eps, imm, max_tree_depth=depth)
        adapted = adapt_update(
            a, chain.position, acc, slow, end, target_accept=target_accept, adapt_mass_matrix=adapt_mass_matrix
        )
        a = jax.tree.map(lambda new, old: jnp.where(warm, new, old), adapted, a)
        out = {
            "position": chain.position,
            "diverging": info.is_divergent,
            "acceptance_rate": acc,
            "n_steps": info.num_integration_steps,
            "tree_depth": info.num_trajectory_expansions,
            "lp": chain.logdensity,
            "energy": info.energy,
            "step_size": jnp.where(warm, jnp.exp(a.log_eps), eps_fixed),
        }
        return (chain, a, key_c, eps_fixed, imm_fixed), out

    @jax.jit
    def run_block(chains, adapt, keys, steps, slow, end, warm, eps_fixed, imm_fixed):
        def per_chain(chain, a, key_c, e, im):
            carry, out = jax.lax.scan(lambda c, xs: one_step(c, xs, warm), (chain, a, key_c, e, im), (steps, slow, end))
            return carry[0], carry[1], out

        return jax.vmap(per_chain)(chains, adapt, keys, eps_fixed, imm_fixed)

    return run_block


class _SamplerState:
    """The chains, the adaptation state and the draws so far: advanced block by block, saved to and read from
    ``nuts_checkpoint.npz``."""

    def __init__(self, step: int, chains: ChainState, adapt: AdaptationState, resumed: tuple[Resumed, ...] = ()):
        self.step, self.chains, self.adapt, self.resumed = step, chains, adapt, resumed
        self.warm_out: dict[str, list[np.ndarray]] = {k: [] for k in ("step_size", "acceptance_rate", "diverging")}
        self.samp_out: dict[str, list[np.ndarray]] = {k: [] for k in ("position", *_STATS)}

    @classmethod
    def initial(cls, logdensity, u0, d, dtype, initial_step_size, inverse_mass_matrix, adapt_mass_matrix, num_chains):
        chains = jax.jit(jax.vmap(lambda u: init(u, logdensity)))(u0)  # jitted: op by op is slow
        if not bool(jnp.all(jnp.isfinite(chains.logdensity))) or bool(jnp.any(chains.logdensity <= -1e29)):
            raise ValueError(
                "nuts: the log density is -inf or NaN at the initial positions; start inside the prior's support "
                "(check the network's parameter values and the priors)."
            )
        adapt = jax.vmap(lambda _: adapt_init(d, dtype, initial_step_size))(jnp.arange(num_chains))
        if inverse_mass_matrix is not None:
            adapt = adapt._replace(imm=_initial_imm(inverse_mass_matrix, d, dtype, adapt_mass_matrix, num_chains))
        return cls(0, chains, adapt)

    @classmethod
    def load(cls, path: Path, settings: dict[str, Any]) -> _SamplerState:
        z = read_npz(path, what=f"nuts: the checkpoint {path}", required=("settings", "step"))
        where = f"nuts: cannot resume from {path}"
        hint = "give the same settings to continue it, or use another checkpoint folder (or delete it) to start again"
        saved = json.loads(str(z["settings"]))
        saved.pop("checkpoint_every", None)  # recorded by earlier versions; the draws do not depend on it
        changes = check_resume(saved, settings, where=where, allowed=("num_samples",), hint=hint)
        missing = [f"{g}_{f}" for g, t in (("chain", ChainState), ("adapt", AdaptationState)) for f in t._fields]
        missing = [k for k in missing if k not in z]
        if missing:
            raise ResumeError(f"{where}: it lacks the arrays {missing} (damaged); {hint}.")
        old = [Resumed(int(s), tuple(tuple(c) for c in ch)) for s, ch in json.loads(str(z.get("resumed", "[]")))]
        step = int(z["step"])
        resumed = (*old, Resumed(step, tuple((k, a, b) for k, (a, b) in changes.items())))
        chains = ChainState(*(jnp.asarray(z[f"chain_{f}"]) for f in ChainState._fields))
        state = cls(
            step, chains, AdaptationState(*(jnp.asarray(z[f"adapt_{f}"]) for f in AdaptationState._fields)), resumed
        )
        for out, prefix in ((state.warm_out, "warm"), (state.samp_out, "samp")):
            for k in out:
                if f"{prefix}_{k}" in z and z[f"{prefix}_{k}"].shape[1]:
                    out[k].append(z[f"{prefix}_{k}"])
        return state

    def save(self, path: Path, settings: dict[str, Any]) -> None:
        arrays = {"settings": np.asarray(json.dumps(settings)), "step": np.asarray(self.step)}
        arrays["resumed"] = np.asarray(json.dumps([[r.at_step, [list(c) for c in r.changed]] for r in self.resumed]))
        arrays.update({f"chain_{f}": np.asarray(v) for f, v in zip(ChainState._fields, self.chains, strict=True)})
        arrays.update({f"adapt_{f}": np.asarray(v) for f, v in zip(AdaptationState._fields, self.adapt, strict=True)})
        for prefix, out in (("warm", self.warm_out), ("samp", self.samp_out)):
            arrays.update({f"{prefix}_{k}": np.concatenate(v, axis=1) for k, v in out.items() if v})
        write_npz(path, arrays)

    def warmup_block(self, run_block, keys, slow_np, end_np, every: int) -> tuple[int, str]:
        step, num_warmup = self.step, len(slow_np)
        stop = min(num_warmup, (step // every + 1) * every)
        steps = jnp.arange(step, stop)
        slow, end = jnp.asarray(slow_np[step:stop]), jnp.asarray(end_np[step:stop])
        eps_now = jnp.exp(self.adapt.log_eps)
        self.chains, self.adapt, out = run_block(
            self.chains, self.adapt, keys, steps, slow, end, True, eps_now, self.adapt.imm
        )
        for k in self.warm_out:
            self.warm_out[k].append(np.asarray(out[k]))
        return self._advance(stop, "warmup", np.asarray(out["step_size"][:, -1]), out, int(out["diverging"].sum()))

    def sampling_block(self, run_block, keys, num_warmup: int, total: int, every: int) -> tuple[int, str]:
        step = self.step
        stop = min(total, num_warmup + ((step - num_warmup) // every + 1) * every)
        steps = jnp.arange(step, stop)
        off = jnp.zeros(steps.shape, bool)
        eps_fixed = jnp.broadcast_to(final_step_size(self.adapt, num_warmup), (keys.shape[0],))
        self.chains, _, out = run_block(
            self.chains, self.adapt, keys, steps, off, off, False, eps_fixed, self.adapt.imm
        )
        for k in self.samp_out:
            self.samp_out[k].append(np.asarray(out[k]))
        div = int(sum(int(np.asarray(v).sum()) for v in self.samp_out["diverging"]))
        return self._advance(stop, "sampling", np.asarray(final_step_size(self.adapt, num_warmup)), out, div)

    def _advance(self, stop: int, phase: str, eps, out, div: int) -> tuple[int, str]:
        if not bool(jnp.all(jnp.isfinite(self.chains.position))):
            raise FloatingPointError("nuts: a chain reached a non-finite position; check the log density.")
        n, self.step = stop - self.step, stop
        acc = np.asarray(out["acceptance_rate"]).mean()
        return n, f"{phase} eps={np.array2string(eps, precision=2, max_line_width=60)} acc={acc:.2f} div={div}"

    def result(self, names, to_u, to_constrained, num_warmup: int, num_samples: int, seconds: float) -> NutsResult:
        """The draws (the first `num_samples` per chain: a resumed run may hold more) and the sampler's state."""
        cut = {k: np.concatenate(v, axis=1)[:, :num_samples] for k, v in self.samp_out.items()}
        positions = jax.vmap(jax.vmap(to_u))(jnp.asarray(cut["position"]))
        stats = {k: jnp.asarray(cut[k]) for k in _STATS}
        n_chains = positions.shape[0]
        if num_warmup:
            wstats = {k: jnp.asarray(np.concatenate(v, axis=1)) for k, v in self.warm_out.items()}
        else:
            wstats = {k: jnp.zeros((n_chains, 0)) for k in self.warm_out}
        return NutsResult(
            names=tuple(names),
            samples=dict(jax.vmap(jax.vmap(to_constrained))(positions)),
            positions=positions,
            stats=stats,
            step_size=jnp.asarray(final_step_size(self.adapt, num_warmup)),
            inverse_mass_matrix=self.adapt.imm,
            warmup_stats=wstats,
            seconds=seconds,
            resumed=self.resumed,
        )


def _initial_imm(inverse_mass_matrix, d: int, dtype, adapt_mass_matrix: bool, num_chains: int):
    """The checked starting inverse mass matrix: diagonal ``(num_chains, d)`` or dense ``(num_chains, d, d)``."""
    imm0 = jnp.asarray(inverse_mass_matrix, dtype)
    if imm0.shape == (d, d):  # dense: symmetric positive definite, kept fixed
        if adapt_mass_matrix:
            raise ValueError("nuts: a dense (d, d) inverse_mass_matrix needs adapt_mass_matrix=False.")
        ok = bool(jnp.all(jnp.isfinite(imm0))) and bool(jnp.all(jnp.linalg.eigvalsh(imm0) > 0))
        if not ok:
            raise ValueError("nuts: the dense inverse_mass_matrix must be symmetric positive definite.")
        return jnp.broadcast_to(imm0, (num_chains, d, d))
    if imm0.shape in ((d,), (num_chains, d)) and bool(jnp.all(jnp.isfinite(imm0) & (imm0 > 0))):
        return jnp.broadcast_to(imm0, (num_chains, d))
    raise ValueError(
        f"nuts: inverse_mass_matrix must be positive and finite with shape ({d},), ({num_chains}, {d}) "
        f"or ({d}, {d}) (dense), got shape {imm0.shape}."
    )


def _precondition(preconditioner, logdensity, u0, d):
    """The log density and starting points in ``z`` with ``u = centre + factor @ z``, and the map ``z -> u``."""
    centre, factor = preconditioner
    dtype = u0.dtype
    c64 = np.asarray(centre, dtype=float)
    L64 = np.asarray(factor, dtype=float)
    if c64.shape != (d,) or L64.shape != (d, d):
        raise ValueError(
            f"nuts: preconditioner must be (centre ({d},), factor ({d}, {d})), got {c64.shape}, {L64.shape}."
        )
    if not (np.all(np.isfinite(c64)) and np.all(np.isfinite(L64))) or abs(np.linalg.slogdet(L64)[1]) == np.inf:
        raise ValueError("nuts: the preconditioner's factor must be finite and invertible.")
    z0 = np.linalg.solve(L64, (np.asarray(u0, dtype=float) - c64).T).T
    c, L = jnp.asarray(c64, dtype), jnp.asarray(L64, dtype)
    to_u = lambda z: c + L @ z  # noqa: E731
    return (lambda z: logdensity(to_u(z))), jnp.asarray(z0, dtype), to_u
