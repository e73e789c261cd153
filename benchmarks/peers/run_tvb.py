"""TVB (tvb-library) on the peer workloads; run by ``benchmarks/peers.py`` in TVB's own virtual environment.

The network: ``models.SupHopf`` (x and y coupled, TVB's cvar = [0, 1]) + ``coupling.Difference``,
``integrators.HeunDeterministic``, the connectome of network.npz with ``speed`` (TVB discretises the delays as
rint(L / speed / dt), like vbtjax), a constant initial history, a ``Raw`` monitor of x and y. float64 (TVB's only
precision). TVB has no vectorised sweep and no autodiff: W2 is a loop building one Simulator per coupling value (TVB's
documented way), W3 a central finite difference (two forward runs).
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
    from tvb.basic.profile import TvbProfile

    TvbProfile.set_profile(TvbProfile.LIBRARY_PROFILE)
    import tvb.simulator as _tvbsim
    from tvb.datatypes import connectivity
    from tvb.simulator import coupling, integrators, models, monitors, simulator

    logging.getLogger("tvb").setLevel(logging.ERROR)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("tvb"):
            logging.getLogger(name).setLevel(logging.ERROR)
    t_import = time.perf_counter() - t0

    try:
        from importlib.metadata import version

        tvb_version = version("tvb-library")
    except Exception:  # noqa: BLE001
        tvb_version = getattr(_tvbsim, "__version__", "?")
    import numba

    dt, speed = spec["dt"], spec["speed"]
    W, L, x0 = netf["weights"], netf["lengths"], netf["x0"]
    N = W.shape[0]
    mp = spec["model"]
    reps, cap = spec["repeats"], spec["cap_s"]
    n_last, sub = spec["loss_last_steps"], spec["sub"]
    result.update(
        tvb_library=tvb_version,
        numpy=np.__version__,
        numba=numba.__version__,
        precision="float64",
        integrator="HeunDeterministic",
        coupled=["x", "y"],
        import_s=t_import,
        variants={},
    )

    def make_sim(a):
        conn = connectivity.Connectivity(
            weights=np.array(W, dtype=np.float64),
            tract_lengths=np.array(L, dtype=np.float64),
            centres=np.zeros((N, 3)),
            region_labels=np.array([f"r{i}" for i in range(N)]),
            speed=np.array([speed]),
        )
        model = models.SupHopf(a=np.array([mp["a"]]), omega=np.array([mp["omega"]]))
        model.variables_of_interest = ("x", "y")
        sim = simulator.Simulator(
            connectivity=conn,
            model=model,
            coupling=coupling.Difference(a=np.array([a])),
            integrator=integrators.HeunDeterministic(dt=dt),
            monitors=(monitors.Raw(),),
        )
        conn.configure()
        H = int(np.rint(L / speed / dt).max()) + 1  # TVB's horizon counts every tract, weighted or not
        sim.initial_conditions = np.broadcast_to(x0[None, :, :, None], (H, 2, N, 1)).copy()
        t = time.perf_counter()
        sim.configure()
        return sim, time.perf_counter() - t

    def run(a, steps):
        sim, t_conf = make_sim(a)
        t = time.perf_counter()
        ((_, y),) = sim.run(simulation_length=steps * dt)
        t_run = time.perf_counter() - t
        assert y.shape[0] == steps, (y.shape, steps)
        return t_conf, t_run, y[:, :, :, 0], sim

    R = {}
    a0 = spec["coupling_a"]
    wl = spec["workloads"]
    if "w1" in wl:
        steps = spec["w1_steps"]
        t = time.perf_counter()
        t_conf, t_first, y, sim = run(a0, steps)
        t_first_call = time.perf_counter() - t
        D = np.asarray(sim.connectivity.idelays, np.int64)
        traces["heun_xy_delays"] = D
        traces["heun_xy_w1_x"] = y[sub - 1 :: sub].astype(np.float32)
        R["horizon"] = int(sim.connectivity.horizon)
        finite = bool(np.isfinite(y).all())
        del y
        times, confs, spent = [], [], 0.0
        for _ in range(max(1, reps - 1)):  # the first call is also a measurement (nothing is compiled)
            if spent + t_first >= cap:
                break
            c, r, _, _ = run(a0, steps)
            times.append(r)
            confs.append(c)
            spent += r
        R["w1"] = dict(
            first_call_s=t_first_call,
            first_run_s=t_first,
            configure_s=t_conf,
            steps=steps,
            regions=N,
            compile_s=0.0,
            finite=finite,
            **C.summary([t_first, *times]),
        )
    if "w2" in wl:
        steps = spec["w2_steps"]
        t_all = time.perf_counter()
        confs, runs, stats = [], [], []
        for a in spec["w2_values"]:
            c, r, y, _ = run(float(a), steps)
            confs.append(c)
            runs.append(r)
            stats.append(C.sweep_stat(y[:, 0], n_last))
        total = time.perf_counter() - t_all
        traces["heun_xy_w2_stat"] = np.array(stats)
        R["w2"] = dict(
            best_s=total,
            median_s=total,
            n=1,
            configure_total_s=sum(confs),
            run_total_s=sum(runs),
            per_sim_s=total / len(runs),
            steps=steps,
            regions=N,
            n_values=len(runs),
            how="Python loop, one Simulator (configure + run) per coupling value",
        )
    if "w3" in wl:
        steps, h = spec["w3_steps"], spec["fd_h"]
        t = time.perf_counter()
        cp, rp, yp, _ = run(a0 + h, steps)
        cm, rm, ym, _ = run(a0 - h, steps)
        total = time.perf_counter() - t
        lp, lm = C.loss_from_x(yp[:, 0], n_last), C.loss_from_x(ym[:, 0], n_last)
        R["w3"] = dict(
            best_s=total,
            median_s=total,
            n=1,
            steps=steps,
            regions=N,
            fd_h=h,
            loss=0.5 * (lp + lm),
            grad=(lp - lm) / (2 * h),
            how="no autodiff: central finite difference, 2 forward runs (configure + run)",
        )
        if spec.get("w3_check_steps"):  # the gradient on a short, well-conditioned horizon (not timed)
            cs, cl = spec["w3_check_steps"], spec["w3_check_last"]
            lp = C.loss_from_x(run(a0 + h, cs)[2][:, 0], cl)
            lm = C.loss_from_x(run(a0 - h, cs)[2][:, 0], cl)
            R["w3_check"] = dict(
                steps=cs, last=cl, loss=0.5 * (lp + lm), grad=(lp - lm) / (2 * h), fd_h=h, how="central FD"
            )
    result["variants"]["heun_xy"] = R


if __name__ == "__main__":
    sys.exit(C.run_main("tvb", body))
