"""vbjax on the peer workloads; run by ``benchmarks/peers.py`` in vbjax's own virtual environment.

vbjax ships no Hopf model (its neural masses: MPR, Jansen-Rit, BVEP, dopamine, ...); in vbjax the user writes the
network's ``dfun(buf, x, t, p)`` for ``vb.make_dde`` anyway, so it is written here: the Stuart-Landau equations of
TVB's SupHopf with diffusive coupling on x and y, the delayed sums from ``vb.delay_apply`` (vbjax's dense gather of
every (i, j) pair). ``vb.make_delay_helper`` discretises lags with ``floor(L / v / dt)``; they are replaced by
``rint`` so that every tool has the same delays. vbjax's Heun (``make_dde``) evaluates the delayed coupling in both
stages (the corrector at t + dt), TVB and vbtjax once per step; and its corrector cannot see zero-delay edges (the
buffer row is not yet written), so the diagonal is dropped from the weights, which is exact here because for
diffusive coupling a zero-delay self-connection adds W_ii (x_i - x_i) = 0. float32 (JAX's default), CPU.
Long runs use ``vb.make_continuation`` (chunks of 500 steps; see below). W2: ``jax.vmap`` over the coupling values
(vbjax's documented way); W3: ``jax.value_and_grad`` through the loop.
"""

from __future__ import annotations

import sys
import time

import _common as C
import numpy as np


def body(spec, netf, result, traces):
    from importlib.metadata import version

    import jax
    import jax.numpy as jnp
    import jaxlib
    import vbjax as vb

    dt, speed = spec["dt"], spec["speed"]
    W, L, x0 = netf["weights"], netf["lengths"], netf["x0"]
    N = W.shape[0]
    mp = spec["model"]
    reps, cap = spec["repeats"], spec["cap_s"]
    n_last, sub = spec["loss_last_steps"], spec["sub"]
    unroll = int(spec.get("vbjax_unroll", 10))
    result.update(
        vbjax=version("vbjax"),
        jax=jax.__version__,
        jaxlib=jaxlib.__version__,
        precision="float32",
        integrator="Heun (make_dde; delayed coupling re-evaluated in the corrector)",
        coupled=["x", "y"],
        backend=jax.default_backend(),
        unroll=unroll,
        variants={},
    )

    Wnd = np.array(W, np.float64)
    np.fill_diagonal(Wnd, 0.0)
    D = C.delays_steps(L, speed, dt)
    assert np.all(np.diag(D)[np.diag(W) != 0] == 0)
    dh = vb.make_delay_helper(jnp.asarray(Wnd.T, jnp.float32), jnp.asarray(L, jnp.float32), dt=dt, v_c=speed)
    # vbjax: Wt = weights.T[:, :, None], so passing W.T gives sum_j W[i, j] x_j(t - lags[i, j])
    lags = np.where(Wnd != 0, D, 0)
    nh = int(lags.max())
    dh = dh._replace(lags=jnp.asarray(lags, jnp.int32), max_lag=nh + 1)
    D_used = np.where(W != 0, D, 0)
    traces["heun_xy_delays"] = D_used
    rowsum = jnp.asarray(Wnd.sum(axis=1), jnp.float32)
    a_, w_ = float(mp["a"]), float(mp["omega"])

    def dfun(buf, x, t, K):
        xd = vb.delay_apply(dh, t, buf)  # (2, N): sum_j W_ij x_j(t - D_ij)
        c = K * (xd - rowsum * x)
        g = a_ - x[0] * x[0] - x[1] * x[1]
        return jnp.stack([g * x[0] - w_ * x[1] + c[0], g * x[1] + w_ * x[0] + c[1]])

    _, loop = vb.make_dde(dt, nh, dfun, unroll=unroll)
    # make_dde's loop carries one buffer row per step of the whole run and its cost per step grows with that buffer
    # (measured with jax 0.10.2 on CPU: 2 000 steps 0.25 s, 10 000 steps 3.8-5.3 s), so long runs go through vbjax's
    # make_continuation (the helper vbjax provides for long delayed runs): chunks of `clen` steps, the buffer rolled
    # between chunks, here driven by a lax.scan over chunks. Same numbers as one long make_dde loop (checked: 0.0).
    clen = int(spec.get("vbjax_chunk", 500))
    cc = vb.make_continuation(loop, clen, nh, N, 2, stochastic=False)
    result["chunk_steps"] = clen

    def sim(K, steps):
        if steps % clen:
            raise ValueError(f"steps ({steps}) must be a multiple of the continuation chunk ({clen})")
        buf = jnp.zeros((nh + 1 + clen, 2, N), jnp.float32).at[clen:].set(jnp.asarray(x0, jnp.float32))
        _, xs = jax.lax.scan(lambda b, _: cc(b, K, None), buf, None, length=steps // clen)
        return xs.reshape(steps, 2, N)

    def compiled(fn, *args):
        t0 = time.perf_counter()
        lowered = jax.jit(fn).lower(*args)
        t1 = time.perf_counter()
        exe = lowered.compile()
        t2 = time.perf_counter()
        return exe, t1 - t0, t2 - t1

    def run_exe(exe, *args):
        return jax.block_until_ready(exe(*args))

    R = dict(horizon=nh + 1)
    a0 = jnp.asarray(spec["coupling_a"], jnp.float32)
    wl = spec["workloads"]
    if "w1" in wl:
        steps = spec["w1_steps"]
        exe, tl, tc = compiled(lambda K: sim(K, steps), a0)
        t_first, y = C.timed(run_exe, exe, a0)
        times, y = C.repeat(run_exe, reps, cap, exe, a0)
        y = np.asarray(y)
        traces["heun_xy_w1_x"] = y[sub - 1 :: sub].astype(np.float32)
        R["w1"] = dict(
            lower_s=tl,
            compile_s=tc,
            first_run_s=t_first,
            first_call_s=tl + tc + t_first,
            steps=steps,
            regions=N,
            finite=bool(np.isfinite(y).all()),
            **C.summary(times),
        )
        del y
    if "w2" in wl:
        steps = spec["w2_steps"]
        values = jnp.asarray(spec["w2_values"], jnp.float32)
        exe, tl, tc = compiled(jax.vmap(lambda K: sim(K, steps)), values)
        t_first, ys = C.timed(run_exe, exe, values)
        times, ys = C.repeat(run_exe, reps, cap, exe, values)
        ys = np.asarray(ys)
        traces["heun_xy_w2_stat"] = np.array([C.sweep_stat(ys[k, :, 0], n_last) for k in range(ys.shape[0])])
        del ys
        R["w2"] = dict(
            lower_s=tl,
            compile_s=tc,
            first_run_s=t_first,
            first_call_s=tl + tc + t_first,
            steps=steps,
            regions=N,
            n_values=int(values.shape[0]),
            how=f"jax.vmap over make_dde + make_continuation ({clen}-step chunks)",
            **C.summary(times),
        )
    if "w3" in wl:
        steps = spec["w3_steps"]

        def loss(K):
            return jnp.mean(sim(K, steps)[-n_last:, 0] ** 2)

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
            how="jax.value_and_grad through make_dde + make_continuation",
            loss=float(out[0]),
            grad=float(out[1]),
            forward_best_s=min(ftimes),
            **C.summary(times),
        )
        if spec.get("w3_check_steps"):  # the gradient on a short, well-conditioned horizon (not timed)
            cs, cl = spec["w3_check_steps"], spec["w3_check_last"]
            cl_, cg = jax.jit(jax.value_and_grad(lambda K: jnp.mean(sim(K, cs)[-cl:, 0] ** 2)))(a0)
            R["w3_check"] = dict(steps=cs, last=cl, loss=float(cl_), grad=float(cg), how="jax.grad")
    result["variants"]["heun_xy"] = R


if __name__ == "__main__":
    sys.exit(C.run_main("vbjax", body))
