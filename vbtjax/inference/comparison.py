"""Model comparison: PSIS-LOO and WAIC through ArviZ from pointwise log-likelihoods, and the evidence (log marginal
likelihood) of tempered SMC runs, with Bayes factors and posterior model probabilities.

- **LOO / WAIC** estimate the expected log predictive density of a new observation (``elpd``; higher is better)
  from the draws of each model's posterior (:class:`~vbtjax.inference.NutsResult` or
  :class:`~vbtjax.inference.SMCResult`) and the log-likelihood of every observation at every draw: the posterior
  needs a ``pointwise_log_likelihood`` (see :class:`~vbtjax.inference.Posterior`). PSIS-LOO (Vehtari, Gelman &
  Gabry 2017) reports a Pareto ``k`` per observation: above 0.7 the importance-sampling estimate of that
  observation's leave-one-out density is unreliable (the observation is influential; refit without it, or use
  K-fold cross-validation). Observations must be conditionally independent given the parameters for the "leave one
  out" to mean what it says (for time series, group them into independent blocks).
- **Evidence** ``log Z = log ∫ prior * likelihood`` from :func:`~vbtjax.inference.smc`: the Bayes factor of two
  models is ``exp(log Z_1 - log Z_2)`` and, with equal prior odds, the posterior probability of model ``m`` is
  ``Z_m / sum Z``. The evidence depends on the priors (a wider prior lowers it), LOO does not (much).

Typical use::

    table = compare({"one region": (post1, res1), "two regions": (post2, res2)}, method="evidence")
    print(format_compare(table))
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .posterior import Posterior

__all__ = ["log_likelihood_draws", "loo", "waic", "compare", "format_compare"]

_METHODS = ("loo", "waic", "evidence")
_BAD_K = 0.7


def _positions(result: Any, what: str = "result") -> np.ndarray:
    """``(chains, draws, d)`` unconstrained draws of a NutsResult / SMCResult, or of an array."""
    pos = getattr(result, "positions", result)
    try:
        arr = jnp.asarray(pos)
    except TypeError as e:
        raise TypeError(
            f"{what}: expected a NutsResult, an SMCResult or an array (chains, draws, d) of unconstrained draws, got "
            f"{type(result).__name__}."
        ) from e
    if arr.ndim != 3:
        raise ValueError(f"{what}: unconstrained draws must be laid out (chains, draws, d), got shape {arr.shape}.")
    return arr


def log_likelihood_draws(
    posterior: Posterior, samples_u: Any, *, chunk_size: int = 256, check: bool = True
) -> np.ndarray:
    """The log-likelihood of every observation at every draw: ``(chains, draws, n_obs)`` (the observations
    flattened in C order).

    **Arguments:**
    - `posterior`: a :class:`~vbtjax.inference.Posterior` with a ``pointwise_log_likelihood``.
    - `samples_u`: unconstrained draws ``(chains, draws, d)``, or a result with ``positions`` (NUTS, SMC).
    - `chunk_size`: draws evaluated at once (one compiled, vmapped program; the last chunk is padded), which bounds
      the memory of the simulations behind the likelihood.
    - `check`: verify at the first draw that the pointwise values sum to ``posterior.log_likelihood_at`` (relative
      tolerance 1e-6, 1e-3 in float32), ``ValueError`` if not: LOO and WAIC of another likelihood than the one
      sampled would be meaningless.

    **Returns:** a NumPy array ``(chains, draws, n_obs)``.
    """
    if not isinstance(posterior, Posterior):
        raise TypeError(f"log_likelihood_draws: expected a Posterior, got {type(posterior).__name__}.")
    if posterior.pointwise_log_likelihood is None:
        raise ValueError(
            "log_likelihood_draws: the posterior has no pointwise log-likelihood; construct it with "
            "Posterior(..., pointwise_log_likelihood=lambda net, latents: <log-likelihood of each observation>)."
        )
    u = _positions(samples_u, "log_likelihood_draws")
    c, n, d = u.shape
    if d != posterior.dim:
        raise ValueError(
            f"log_likelihood_draws: the draws have d = {d} unconstrained values, the posterior has {posterior.dim}; "
            "were they sampled from this posterior?"
        )
    if chunk_size < 1:
        raise ValueError(f"log_likelihood_draws: chunk_size must be >= 1, got {chunk_size}.")
    flat = u.reshape(c * n, d)
    one = lambda x: jnp.ravel(posterior.pointwise_log_likelihood_at(x))  # noqa: E731
    size = min(int(chunk_size), c * n)
    f = jax.jit(jax.vmap(one))
    out = []
    for start in range(0, c * n, size):
        block = flat[start : start + size]
        m = block.shape[0]
        if m < size:  # pad, so that every chunk runs the same compiled program
            block = jnp.concatenate([block, jnp.broadcast_to(block[:1], (size - m, d))])
        out.append(np.asarray(f(block))[:m])
        if check and start == 0:
            s = float(np.sum(out[0][0], dtype=float))
            total = float(jax.jit(lambda x: posterior.log_likelihood_at(x))(flat[0]))
            tol = 1e-3 if flat.dtype == jnp.float32 else 1e-6
            if (np.isfinite(s) or np.isfinite(total)) and not abs(s - total) <= tol * max(1.0, abs(total)):
                raise ValueError(
                    f"log_likelihood_draws: the pointwise log-likelihoods sum to {s:.8g} but log_likelihood gives "
                    f"{total:.8g} at the first draw; pointwise_log_likelihood must return the terms of "
                    "log_likelihood."
                )
    ll = np.concatenate(out).reshape(c, n, -1)
    return ll


def _idata(posterior: Posterior, result: Any, name: str):
    """ArviZ InferenceData with the posterior draws and the pointwise log-likelihood (variable ``obs``): the values
    an SMCResult stored when their shape matches the posterior's observations, else computed here."""
    from .diagnostics import to_inference_data

    if posterior.pointwise_log_likelihood is None:
        raise ValueError(
            f"{name}: the posterior has no pointwise log-likelihood; construct it with "
            "Posterior(..., pointwise_log_likelihood=lambda net, latents: <log-likelihood of each observation>)."
        )
    pos = _positions(result, name)
    u_one = jax.ShapeDtypeStruct(pos.shape[-1:], pos.dtype)
    n_obs = int(np.prod(jax.eval_shape(posterior.pointwise_log_likelihood_at, u_one).shape))
    ll = getattr(result, "pointwise_log_likelihood", None)
    if ll is not None and tuple(np.shape(ll)) == (*pos.shape[:2], n_obs):
        ll = np.asarray(ll)
    else:
        ll = log_likelihood_draws(posterior, pos)
    samples = getattr(result, "samples", None)
    if samples is None:
        samples = {"u": np.asarray(pos)}
    idata = to_inference_data({k: np.asarray(v) for k, v in samples.items()})
    idata.add_groups(log_likelihood={"obs": ll}, dims={"obs": ["obs_id"]})
    return idata


def _check_model(entry: Any, name: str) -> tuple[Posterior, Any]:
    if not (isinstance(entry, tuple | list) and len(entry) == 2):
        raise TypeError(f"{name}: expected a (posterior, result) pair, got {type(entry).__name__}.")
    posterior, result = entry
    if not isinstance(posterior, Posterior):
        raise TypeError(f"{name}: the first element must be a Posterior, got {type(posterior).__name__}.")
    pos = _positions(result, name)
    if pos.shape[-1] != posterior.dim:
        raise ValueError(
            f"{name}: the result has d = {pos.shape[-1]} unconstrained values, its posterior {posterior.dim}; the "
            "result was not sampled from this posterior."
        )
    return posterior, result


def _k_report(elpd, what: str) -> None:
    k = np.asarray(getattr(elpd, "pareto_k", np.zeros(0)))
    bad = int(np.sum(k > _BAD_K))
    if bad:
        warnings.warn(
            f"{what}: {bad} of {k.size} observations have Pareto k > {_BAD_K} (max {float(np.max(k)):.2f}); their "
            "leave-one-out estimates are unreliable (influential observations).",
            UserWarning,
            stacklevel=3,
        )


def loo(posterior: Posterior, result: Any, **kwargs: Any):
    """PSIS-LOO of the draws in `result` (``arviz.loo`` with ``pointwise=True``).

    **Arguments:**
    - `posterior`: the :class:`Posterior` the draws target, with a ``pointwise_log_likelihood``.
    - `result`: a :class:`~vbtjax.inference.NutsResult`, an :class:`~vbtjax.inference.SMCResult` (whose stored
      pointwise log-likelihoods are reused) or unconstrained draws ``(chains, draws, d)``.
    - keyword arguments go to ``arviz.loo`` (``reff``, ``scale``).

    **Returns:** ArviZ's ``ELPDData``: ``elpd_loo``, ``se``, ``p_loo`` (effective number of parameters),
    ``loo_i`` (per observation), ``pareto_k`` (per observation; > 0.7: unreliable) and ``warning``; its ``repr``
    tabulates the Pareto k. A ``UserWarning`` names the number of observations with k > 0.7.
    """
    from .diagnostics import arviz_module

    posterior, result = _check_model((posterior, result), "loo")
    az = arviz_module()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto", category=UserWarning)
        out = az.loo(_idata(posterior, result, "loo"), pointwise=True, **kwargs)
    _k_report(out, "loo")
    return out


def waic(posterior: Posterior, result: Any, **kwargs: Any):
    """WAIC of the draws in `result` (``arviz.waic`` with ``pointwise=True``); arguments as :func:`loo`.

    **Returns:** ArviZ's ``ELPDData``: ``elpd_waic``, ``se``, ``p_waic``, ``waic_i`` and ``warning`` (set when the
    posterior variance of some observation's log-likelihood exceeds 0.4, where WAIC is unreliable; prefer LOO).
    """
    from .diagnostics import arviz_module

    posterior, result = _check_model((posterior, result), "waic")
    return arviz_module().waic(_idata(posterior, result, "waic"), pointwise=True, **kwargs)


def compare(models: Mapping[str, Any], *, method: str = "loo", **kwargs: Any):
    """Compare models fitted to the same data.

    **Arguments:**
    - `models`: name -> ``(posterior, result)``, at least two; `result` a :class:`~vbtjax.inference.NutsResult` or
      :class:`~vbtjax.inference.SMCResult` (``"evidence"`` needs SMC results).
    - `method`: ``"loo"`` or ``"waic"``: ``arviz.compare`` (stacking weights; keyword arguments go to it), with two
      more columns for LOO: ``pareto_k_max`` and ``n_bad_k`` (observations with k > 0.7). ``"evidence"``: the log
      evidence of each model's SMC runs.

    **Returns:** a ``pandas.DataFrame``, one row per model, best first, with ``table.attrs["method"]``. For
    ``"evidence"`` the columns are ``rank``; ``log_evidence`` (log of the mean of the runs' ``Z``); ``sd`` (over
    runs of ``log Z``) and ``se`` (``sd / sqrt(runs)``); ``log_bayes_factor`` (``log Z - log Z_best``, <= 0) with
    ``log_bayes_factor_se`` (the two se's combined); ``bayes_factor`` (the best model over this one, >= 1);
    ``probability``: posterior model probability under equal prior odds; ``runs``. For ``"loo"``/``"waic"``:
    ArviZ's ``rank``, ``elpd_loo``/``elpd_waic``, ``p_loo``/``p_waic``, ``elpd_diff``, ``weight``, ``se``, ``dse``,
    ``warning``, ``scale``. :func:`format_compare` renders it as text.
    """
    import pandas as pd

    if method not in _METHODS:
        raise ValueError(f"compare: method must be one of {_METHODS}, got {method!r}.")
    if not isinstance(models, Mapping) or len(models) < 2:
        raise ValueError("compare: give at least two models as {name: (posterior, result)}.")
    checked = {str(name): _check_model(entry, f"compare[{name!r}]") for name, entry in models.items()}

    if method == "evidence":
        if kwargs:
            raise TypeError(f"compare: unexpected arguments for method='evidence': {sorted(kwargs)}.")
        rows = {}
        for name, (_, res) in checked.items():
            if not hasattr(res, "log_evidence"):
                raise TypeError(
                    f"compare[{name!r}]: method='evidence' needs an SMCResult (vbtjax.inference.smc), got "
                    f"{type(res).__name__}; use method='loo' for NUTS draws."
                )
            if not getattr(res, "completed", True):
                raise ValueError(f"compare[{name!r}]: the SMC runs did not reach temperature 1 (max_steps).")
            le = np.asarray(res.log_evidence, dtype=float)
            if not np.all(np.isfinite(le)):
                raise ValueError(f"compare[{name!r}]: the log evidence is not finite in some run: {le}.")
            comb = float(np.logaddexp.reduce(le) - np.log(le.size))
            sd = float(np.std(le, ddof=1)) if le.size > 1 else float("nan")
            rows[name] = {"log_evidence": comb, "sd": sd, "se": sd / math.sqrt(le.size), "runs": int(le.size)}
        table = pd.DataFrame.from_dict(rows, orient="index").sort_values("log_evidence", ascending=False)
        best = table.index[0]
        lz = table["log_evidence"].to_numpy()
        table["log_bayes_factor"] = lz - lz[0]
        table["log_bayes_factor_se"] = np.sqrt(table["se"].to_numpy() ** 2 + table.loc[best, "se"] ** 2)
        table.loc[best, "log_bayes_factor_se"] = 0.0
        table["bayes_factor"] = np.exp(lz[0] - lz)
        table["probability"] = np.exp(lz - np.logaddexp.reduce(lz))
        table.insert(0, "rank", np.arange(len(table)))
        table = table[
            ["rank", "log_evidence", "sd", "se", "log_bayes_factor", "log_bayes_factor_se", "bayes_factor"]
            + ["probability", "runs"]
        ]
        table.attrs["method"] = "evidence"
        return table

    from .diagnostics import arviz_module

    az = arviz_module()
    idatas = {name: _idata(post, res, f"compare[{name!r}]") for name, (post, res) in checked.items()}
    n_obs = {name: int(idata.log_likelihood["obs"].shape[-1]) for name, idata in idatas.items()}
    if len(set(n_obs.values())) > 1:
        raise ValueError(
            f"compare: the models have different numbers of observations {n_obs}; LOO and WAIC compare models of "
            "the same data."
        )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto", category=UserWarning)
        warnings.filterwarnings(
            "ignore", message="For one or more samples the posterior variance", category=UserWarning
        )
        warnings.filterwarnings("ignore", message="The inplace keyword", category=DeprecationWarning)  # ArviZ/pandas
        table = az.compare(idatas, ic=method, **kwargs)
        if method == "loo":
            ks = {name: np.asarray(az.loo(idata, pointwise=True).pareto_k) for name, idata in idatas.items()}
            table["pareto_k_max"] = [float(np.max(ks[n])) for n in table.index]
            table["n_bad_k"] = [int(np.sum(ks[n] > _BAD_K)) for n in table.index]
    table.attrs["method"] = method
    return table


def format_compare(table: Any) -> str:
    """A short text rendering of a :func:`compare` table: a header naming the method, the table, and a line on the
    preferred model (for ``"evidence"``: its probability and the Bayes factor over the runner-up)."""
    method = table.attrs.get("method", "")
    lines = [f"Model comparison ({method})"]
    with_fmt = table.copy()
    lines.append(with_fmt.to_string(float_format=lambda v: f"{v:.4g}"))
    best = table.index[0]
    if method == "evidence" and len(table) > 1:
        second = table.index[1]
        log_bf = -table.loc[second, "log_bayes_factor"]
        lines.append(
            f"best: {best!r} (probability {table.loc[best, 'probability']:.3g} under equal prior odds; Bayes factor "
            f"{table.loc[second, 'bayes_factor']:.3g} over {second!r}, log BF {log_bf:.3g} "
            f"± {table.loc[second, 'log_bayes_factor_se']:.2g})"
        )
    elif len(table) > 1:
        second = table.index[1]
        lines.append(
            f"best: {best!r} (elpd difference to {second!r}: {table.loc[second, 'elpd_diff']:.3g} ± "
            f"{table.loc[second, 'dse']:.2g})"
        )
        if "n_bad_k" in table and int(table["n_bad_k"].sum()):
            lines.append(f"warning: observations with Pareto k > {_BAD_K}: {dict(table['n_bad_k'])}")
    return "\n".join(lines)
