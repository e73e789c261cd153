"""Amortised resting-state inference: the global coupling and the bifurcation parameter of the SupHopf network on
the HCP subject's connectome, from FC and FCD summaries, with neural posterior estimation.

1. The problem (:func:`vbtjax.sbi.problems.resting_state_problem`): ``coupling.a ~ Uniform(0, 4e-3)`` /ms and a
   scalar ``model.a ~ Uniform(-1e-4, 2e-5)`` /ms; features: 10 FC summaries + 5 FCD summaries of ``--volumes``
   BOLD volumes at TR = 720 ms.
2. A budget of ``--n`` simulations; two estimators trained on it: on all 15 features, and on the 10 FC
   summaries only (the embedded HCP subject has its FC, not its BOLD series, so no FCD); calibration of both on
   held-out simulations.
3. The posterior for a synthetic observation with known truth (a fresh simulation) and for the HCP subject's FC.

With ``--map strength`` the bifurcation parameter is a parameter map, ``model.a = a0 + a1 z`` with ``z`` the
z-scored log node strength (``a0 ~ Uniform(-2e-3, 0)``, ``a1 ~ Uniform(-5e-4, 5e-4)`` /ms; the scalar ``model.a``
range hardly matters next to the coupling's damping), and the features gain the map's correlation with each
region's mean FC and BOLD log sd.

    python examples/sbi_resting_state.py --out /tmp/sbi-rs                    # 1200 volumes, 300 simulations
    python examples/sbi_resting_state.py --map strength --out /tmp/sbi-rs-map # coupling and a parameter map
    python examples/sbi_resting_state.py --quick --out /tmp/sbi-rs-quick      # tiny settings (tests)

Writes ``sbi_resting_state.json`` and ``sbi_resting_state.png`` to ``--out``. Units: ms, 1/ms.
"""

import argparse
import json
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import vbtjax as vbt  # noqa: E402
from vbtjax import sbi  # noqa: E402
from vbtjax.sbi.problems import resting_state_problem  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=300, help="simulation budget (300)")
    ap.add_argument("--volumes", type=int, default=1200, help="BOLD volumes per simulation (1200, as the HCP data)")
    ap.add_argument("--dt", type=float, default=72.0, help="integration step, ms (72 = TR / 10)")
    ap.add_argument("--coupling-max", type=float, default=4e-3, help="coupling prior bound, 1/ms (4e-3)")
    ap.add_argument(
        "--truth",
        type=float,
        nargs="+",
        default=None,
        help="coupling.a and model.a (1/ms) of the synthetic observation (2.5e-3 -2e-5; with --map: a0 and a1 too, "
        "2.5e-3 -1e-3 3e-4)",
    )
    ap.add_argument("--map", choices=("none", "strength"), default="none", help="model.a as a parameter map (none)")
    ap.add_argument("--max-epochs", type=int, default=300)
    ap.add_argument("--quick", action="store_true", help="tiny settings: 60 simulations of 250 volumes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="sbi-rs", help="output folder")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.volumes, args.max_epochs = 60, 250, 20
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    data = vbt.datasets.hcp_subject()
    use_map = args.map != "none"
    map_kw = dict(a_map=args.map, a_range=(-2e-3, 0.0), a_slope_max=5e-4) if use_map else {}
    truth = args.truth or ((2.5e-3, -1e-3, 3e-4) if use_map else (2.5e-3, -2e-5))
    if len(truth) != (3 if use_map else 2):
        ap.error(f"--truth takes {3 if use_map else 2} values here")
    problem = resting_state_problem(
        data.connectome, tr=data.tr, n_samples=args.volumes, dt=args.dt, coupling_max=args.coupling_max, **map_kw
    )
    # the HCP subject: FC only (the embedded subject has no BOLD series)
    fc_problem = resting_state_problem(
        data.connectome,
        tr=data.tr,
        n_samples=args.volumes,
        dt=args.dt,
        features="fc",
        coupling_max=args.coupling_max,
        **map_kw,
    )
    print(f"{data.name}: {data.n_regions} regions; {problem.n_features} features: {', '.join(problem.feature_names)}")

    t0 = time.perf_counter()
    budget = problem.simulate_budget(args.n, out / "budget", key=jax.random.key(args.seed), chunk_size=100)
    t_budget = time.perf_counter() - t0
    n_test = max(10, args.n // 5)
    train, test = budget.finite_only().split(n_test)
    fc_cols = np.asarray([problem.feature_names.index(name) for name in fc_problem.feature_names])

    def columns(b, cols):
        return sbi.Budget(b.u, b.theta, b.x[:, cols], b.names, b.shapes, b.info, b.finite)

    kw = dict(flow="nsf", layers=3, width=32, max_epochs=args.max_epochs, patience=30, batch_size=64)
    results = {}
    estimators = {}
    for label, cols in (("fc+fcd", slice(None)), ("fc", fc_cols)):
        npe, hist = sbi.train_npe(columns(train, cols), key=jax.random.key(1), **kw)
        cal = sbi.calibrate(npe, problem.prior, columns(test, cols), key=jax.random.key(2), num_draws=200)
        print(f"[{label}] trained in {hist['seconds']:.1f} s ({len(hist['val_loss'])} epochs)\n{cal.summary()}")
        estimators[label] = npe
        results[label] = {
            "seconds_training": hist["seconds"],
            "epochs": len(hist["val_loss"]),
            "max_coverage_error": cal.max_coverage_error(),
            "coverage_band_99": cal.coverage_band(),
            "coverage_90": dict(zip(cal.names, cal.coverage[np.argmin(np.abs(cal.levels - 0.9))], strict=True)),
            "median_shrinkage": dict(zip(cal.names, np.median(cal.shrinkage, 0), strict=True)),
        }
    estimators["fc+fcd"].save(
        out / "npe", problem.prior, history=None, description=problem.description(), overwrite=True
    )

    # synthetic observation with known truth
    c_true, a_true = truth[0], np.asarray(truth[1:]) if use_map else truth[1]
    a_leaf = problem.prior.selection.params[1].to_leaf(jnp.asarray(a_true))
    net = eqx.tree_at(lambda m: (m.coupling.a, m.model.a), problem.prior.net, (jnp.asarray(c_true), a_leaf))
    x_syn = np.asarray(jax.jit(problem.run)(net, jax.random.key(12345)))
    posts = {}
    t0 = time.perf_counter()
    posts["synthetic"] = estimators["fc+fcd"].posterior(problem.prior, jax.random.key(3), x_syn, 1000)
    t_inf = time.perf_counter() - t0
    posts["synthetic (FC only)"] = estimators["fc"].posterior(problem.prior, jax.random.key(3), x_syn[fc_cols], 1000)
    x_hcp = fc_problem.observe(np.asarray(data.fc))
    posts[data.name] = estimators["fc"].posterior(problem.prior, jax.random.key(4), x_hcp, 1000)
    rows = {}
    for name, d in posts.items():
        row = {}
        for k, v in _scalars(d).items():
            q = np.quantile(v, [0.05, 0.5, 0.95])
            row[k] = {"mean": float(v.mean()), "sd": float(v.std()), "q05": float(q[0]), "q95": float(q[2])}
        rows[name] = row
        line = "; ".join(f"{k} {r['mean']:.3g} [{r['q05']:.3g}, {r['q95']:.3g}]" for k, r in row.items())
        print(f"{name:22s} {line}")
    print(f"truth of the synthetic observation: coupling.a {c_true:.3g}, model.a {np.round(a_true, 8)}")
    lo, hi = problem.prior.priors["coupling.a"].low, problem.prior.priors["coupling.a"].high
    a_lo, a_hi = problem.prior.priors["model.a"].low, problem.prior.priors["model.a"].high
    print(
        f"(prior: coupling.a uniform on [{float(lo):g}, {float(hi):g}], model.a on [{np.asarray(a_lo)}, "
        f"{np.asarray(a_hi)}]; 90% intervals)"
    )
    fc_names = fc_problem.feature_names
    print(f"features of {data.name}: " + ", ".join(f"{n} {v:.3f}" for n, v in zip(fc_names, x_hcp, strict=True)))
    q = np.quantile(budget.x[:, fc_cols], [0.01, 0.99], axis=0)
    outside = [n for n, v, a, b in zip(fc_names, x_hcp, q[0], q[1], strict=True) if not a <= v <= b]
    if outside:
        print(f"{data.name}'s features outside the budget's 1-99% range: {outside} (the model misfits them)")

    fig, ax = plt.subplots(1, 3, figsize=(13, 3.8))
    for j, (name, d) in enumerate(posts.items()):
        a_draws = np.asarray(d["model.a"]).reshape(len(d["coupling.a"]), -1)
        ax[j].plot(d["coupling.a"] * 1e3, a_draws[:, -1] * 1e5, ".", ms=1.5, alpha=0.4)
        if name.startswith("synthetic"):
            ax[j].plot(c_true * 1e3, np.ravel(a_true)[-1] * 1e5, "rx", ms=8, label="truth")
            ax[j].legend()
        what = "model.a slope a1" if use_map else "model.a"
        ax[j].set(title=name, xlabel="coupling.a (1e-3 /ms)", ylabel=f"{what} (1e-5 /ms)")
        if not use_map:
            ax[j].set_ylim(-10, 2)
    fig.tight_layout()
    fig.savefig(out / "sbi_resting_state.png", dpi=100)
    summary = {
        "n": args.n,
        "volumes": args.volumes,
        "dt": args.dt,
        "seconds_budget": t_budget,
        "sims_per_second": args.n / t_budget,
        "estimators": results,
        "posteriors": rows,
        "map": args.map,
        "truth": {"coupling.a": c_true, "model.a": np.asarray(a_true).tolist()},
        "seconds_inference": t_inf,
        "hcp_features": dict(zip(fc_names, x_hcp, strict=True)),
        "hcp_features_outside_budget": outside,
        "seconds_total": time.perf_counter() - t_start,
    }
    from vbtjax.cli import _jsonable

    (out / "sbi_resting_state.json").write_text(json.dumps(_jsonable(summary), indent=1) + "\n")
    print(
        f"budget {t_budget:.0f} s ({args.n / t_budget:.2f} sims/s); {summary['seconds_total']:.0f} s in all; "
        f"wrote {out}/"
    )
    return summary


def _scalars(draws):
    """Posterior draws by name -> by scalar name (``model.a[0]``, ``model.a[1]`` for a parameter map)."""
    out = {}
    for k, v in draws.items():
        v = np.asarray(v)
        if v.ndim == 1:
            out[k] = v
        else:
            out.update({f"{k}[{j}]": v[:, j] for j in range(v.shape[1])})
    return out


if __name__ == "__main__":
    main()
