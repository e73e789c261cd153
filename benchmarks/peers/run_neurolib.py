"""neurolib on the peer workloads; run by ``benchmarks/peers.py`` in neurolib's own virtual environment.

The network: neurolib's ``HopfModel`` (Stuart-Landau, its numba-compiled Euler loop), ``coupling="diffusive"`` (as
TVB's Difference: K * sum_j C_ij (x_j(t - D_ij) - x_i(t)); neurolib couples x only, its y coupling is commented out),
``Cmat`` = the weights, ``lengthMat`` = the tract lengths, ``signalV`` = speed (mm/ms = m/s), delays
``around(L / signalV / dt)`` (round half to even, as TVB and vbtjax), OU noise off (``sigma_ou = 0``), the initial
state held over the history (``xs_init``/``ys_init`` of shape (N, 1)). float64. neurolib has no autodiff: W3 is a
central finite difference. W2: a loop over ``model.run()`` with ``K_gl`` set (neurolib's ``BoxSearch`` exploration
runs the same loop through pypet and writes every run to HDF5, which only adds cost).
"""

from __future__ import annotations

import logging
import sys
import time

import _common as C
import numpy as np


def body(spec, netf, result, traces):
    import warnings

    warnings.filterwarnings("ignore")
    t0 = time.perf_counter()
    from neurolib.models.hopf import HopfModel

    logging.getLogger().setLevel(logging.ERROR)
    t_import = time.perf_counter() - t0
    from importlib.metadata import version

    import numba

    dt, speed = spec["dt"], spec["speed"]
    W, L, x0 = netf["weights"], netf["lengths"], netf["x0"]
    N = W.shape[0]
    mp = spec["model"]
    reps, cap = spec["repeats"], spec["cap_s"]
    n_last, sub = spec["loss_last_steps"], spec["sub"]
    result.update(
        neurolib=version("neurolib"),
        numpy=np.__version__,
        numba=numba.__version__,
        precision="float64",
        integrator="Euler",
        coupled=["x"],
        import_s=t_import,
        variants={},
    )

    model = HopfModel(Cmat=np.array(W, np.float64), Dmat=np.array(L, np.float64))
    p = model.params
    p["dt"] = dt
    p["signalV"] = speed
    p["a"] = mp["a"]
    p["w"] = mp["omega"]
    p["sigma_ou"] = 0.0
    p["coupling"] = "diffusive"
    p["xs_init"] = np.array(x0[0][:, None], np.float64)
    p["ys_init"] = np.array(x0[1][:, None], np.float64)

    def run(a, steps):
        p["K_gl"] = float(a)
        p["duration"] = steps * dt
        p["x_ou"] = np.zeros(N)
        p["y_ou"] = np.zeros(N)
        t = time.perf_counter()
        model.run()
        t_run = time.perf_counter() - t
        x = np.asarray(model.outputs["x"]).T  # (T, N)
        y = np.asarray(model.outputs["y"]).T
        assert x.shape[0] == steps, (x.shape, steps)
        return t_run, np.stack([x, y], axis=1)

    R = {}
    a0 = spec["coupling_a"]
    wl = spec["workloads"]
    if "w1" in wl:
        steps = spec["w1_steps"]
        t_first, y = run(a0, steps)  # includes numba's JIT compilation of the loop
        traces["euler_x_delays"] = np.asarray(p["Dmat_ndt"], np.int64)
        traces["euler_x_w1_x"] = y[sub - 1 :: sub].astype(np.float32)
        finite = bool(np.isfinite(y).all())
        del y
        times, spent = [], 0.0
        for _ in range(max(1, reps)):
            t, _ = run(a0, steps)
            times.append(t)
            spent += t
            if spent >= cap:
                break
        R["horizon"] = int(np.max(p["Dmat_ndt"])) + 1
        R["w1"] = dict(
            first_call_s=t_first,
            compile_s=max(0.0, t_first - min(times)),
            steps=steps,
            regions=N,
            finite=finite,
            **C.summary(times),
        )
    if "w2" in wl:
        steps = spec["w2_steps"]
        totals, stats = [], None
        for _ in range(max(1, min(reps, 3))):
            t_all = time.perf_counter()
            stats = []
            for a in spec["w2_values"]:
                _, y = run(float(a), steps)
                stats.append(C.sweep_stat(y[:, 0], n_last))
            totals.append(time.perf_counter() - t_all)
            if sum(totals) >= cap:
                break
        traces["euler_x_w2_stat"] = np.array(stats)
        R["w2"] = dict(
            steps=steps,
            regions=N,
            n_values=len(spec["w2_values"]),
            how="Python loop over model.run() with K_gl set",
            **C.summary(totals),
        )
    if "w3" in wl:
        steps, h = spec["w3_steps"], spec["fd_h"]
        totals = []
        for _ in range(max(1, min(reps, 3))):
            t = time.perf_counter()
            _, yp = run(a0 + h, steps)
            _, ym = run(a0 - h, steps)
            totals.append(time.perf_counter() - t)
            if sum(totals) >= cap:
                break
        lp, lm = C.loss_from_x(yp[:, 0], n_last), C.loss_from_x(ym[:, 0], n_last)
        R["w3"] = dict(
            steps=steps,
            regions=N,
            fd_h=h,
            loss=0.5 * (lp + lm),
            grad=(lp - lm) / (2 * h),
            how="no autodiff: central finite difference, 2 forward runs",
            **C.summary(totals),
        )
        if spec.get("w3_check_steps"):  # the gradient on a short, well-conditioned horizon (not timed)
            cs, cl = spec["w3_check_steps"], spec["w3_check_last"]
            lp = C.loss_from_x(run(a0 + h, cs)[1][:, 0], cl)
            lm = C.loss_from_x(run(a0 - h, cs)[1][:, 0], cl)
            R["w3_check"] = dict(
                steps=cs, last=cl, loss=0.5 * (lp + lm), grad=(lp - lm) / (2 * h), fd_h=h, how="central FD"
            )
    result["variants"]["euler_x"] = R


if __name__ == "__main__":
    sys.exit(C.run_main("neurolib", body))
