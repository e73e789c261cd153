"""Gradient cost of ``vbtjax.simulate``: time and peak memory of reverse mode (and forward mode) on an FC loss.

The network of ``benchmarks/simulate.py`` (TVB's 76-region connectome, MontbrioPazoRoxin with TVB's defaults,
``Linear(a=0.01)``, 3.0 mm/ms, dt = 0.1 ms, 100 000 Heun steps = 10 s, float32, deterministic, the same seeded
initial state, ``TemporalAverage(period=1.0)``). Loss: ``fc_correlation_loss(fc(r_tavg[discard:]), target_fc)``
with ``target_fc`` the FC of the same run at coupling ``a = 0.015`` (fixed, computed once).

Measured:

  forward        jit(loss) through vbtjax.simulate
  grad a         jax.value_and_grad of the loss w.r.t. the coupling a, for several ``chunk_steps`` (checkpointed
                 chunks: memory ~ n_steps / chunk_steps ring buffers, time ~ constant)
  grad (a, eta)  w.r.t. a and the per-region excitability eta (76,)
  jvp a          forward mode, jax.jvp w.r.t. a
  design 1       Diffrax: diffeqsolve with a custom solver carrying the ring buffer in its state, ConstantStepSize,
                 SaveAt at the 1 ms sample times, RecursiveCheckpointAdjoint (../shared/DESIGN.md); checked to
                 give the same samples and gradient as vbtjax.simulate
  plain scan     the hand-written one-step-per-iteration lax.scan of benchmarks/simulate.py, no checkpointing

Times are best-of (and median) over ``--repeats`` interleaved calls of compiled executables; peak memory is the
peak RSS (VmHWM) of the whole fresh process (this script with ``--only``), as in benchmarks/simulate.py; that process
reads the target FC from a file written by this one, as a user's empirical FC would be read (simulating the target
there would add the compilation of a second program to the peak). The float64
gradient is checked against central finite differences on a shorter run (exit status 1 if the relative error
exceeds 1e-4, or if design 1 disagrees with vbtjax.simulate).

    python benchmarks/gradient.py                                  # ~10 min on 2 idle cores
    python benchmarks/gradient.py --steps 20000 --repeats 3 --no-memory
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from simulate import (  # noqa: E402  (shared helpers of the forward benchmark)
    DT,
    _block,
    _compile,
    _loadavg,
    _machine,
    _maxrss_mb,
    _reset_peak,
    _rss_now_mb,
    _scan_ref_fn,
    _setup,
)

CHUNKS = (250, 500, 1000, 2000, 5000)
DEFAULT_CHUNK = 1000  # vbtjax.simulate's default
TARGET_A = 0.015  # coupling of the run whose FC is the target
DISCARD_MS = 0.0  # the deterministic network settles on a fixed point after ~100 ms; its FC lives in the transient
FD_STEPS = 10_000
FD_H = 1e-6
FD_RTOL = 1e-4
D1_RTOL = 1e-3  # design 1 vs vbtjax.simulate, float32
D1_CHECKPOINTS = 1000  # RecursiveCheckpointAdjoint(checkpoints=...) for design 1


# ----------------------------------------------------------------------------------------------- loss functions
def _tavg_vbt(S, n_steps, chunk):
    import equinox as eqx

    vbt, net = S["vbt"], S["net"]
    mon = {"tavg": vbt.monitors.TemporalAverage(period=1.0)}

    def f(hist, a, eta=None):
        n = eqx.tree_at(lambda n: n.coupling.a, net, a)
        if eta is not None:
            n = eqx.tree_at(lambda n: n.model.eta, n, eta)
        return vbt.simulate(n, n_steps * DT, DT, history=hist, monitors=mon, chunk_steps=chunk).ys["tavg"]

    return f


def _tavg_design1(S, n_steps, checkpoints=D1_CHECKPOINTS):
    """Design 1: diffrax.diffeqsolve with a solver that keeps the (H, 2, N) ring buffer of past states and the open
    temporal-average window in its state. Time runs in units of steps (exact in float32); SaveAt(ts) at the end of
    every 1 ms window saves the window's mean. Per step: gather of the 1 560 weights' delayed values +
    segment_sum, TVB Heun (bounds after both stages), one ring-buffer write."""
    import diffrax
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    N, H, q, dtype = S["N"], S["H"], S["q"], S["dtype"]
    tgt, src = S["tgt"], S["src"]
    De = jnp.asarray(S["D"][tgt, src], jnp.int32)
    src_j, tgt_j = jnp.asarray(src, jnp.int32), jnp.asarray(tgt, jnp.int32)
    w = jnp.asarray(S["W"][tgt, src], dtype)
    slot_of_row = np.mod(np.arange(H) - (H - 1), H)  # history row r holds step r - (H - 1); step m in slot m mod H

    class RingHeun(diffrax.AbstractSolver):
        term_structure = diffrax.AbstractTerm
        interpolation_cls = diffrax.LocalLinearInterpolation

        def order(self, terms):
            return 2

        def init(self, terms, t0, t1, y0, args):
            return None

        def func(self, terms, t0, y0, args):
            return jax.tree.map(jnp.zeros_like, y0)

        def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
            model, a = args
            x, buf, acc = y0
            m = jnp.rint(t0).astype(jnp.int32)  # x = state at step m
            xd = buf[jnp.mod(m - De, H), :, src_j]  # (E, 2): x_j(m - D_ij)
            c = a * jax.ops.segment_sum(w[:, None] * xd, tgt_j, num_segments=N, indices_are_sorted=True).T
            d1 = model.dfun(x, c)
            xp = model.bound(x + DT * d1)
            x1 = model.bound(x + 0.5 * DT * (d1 + model.dfun(xp, c)))
            buf = jax.lax.dynamic_update_index_in_dim(buf, x1, jnp.mod(m + 1, H), 0)
            acc = jnp.where(m % q == 0, x1, acc + x1)  # window of steps kq+1 .. (k+1)q
            y1 = (x1, buf, acc)
            return y1, None, dict(y0=y0, y1=y1), None, diffrax.RESULTS.successful

    term = diffrax.ODETerm(lambda t, y, args: y)  # unused by RingHeun.step; the drift is in the solver
    ts = jnp.arange(1, n_steps // q + 1, dtype=dtype) * q

    def f(hist, a, eta=None):
        model = S["model"] if eta is None else eqx.tree_at(lambda m: m.eta, S["model"], eta)
        buf = jnp.zeros((H, 2, N), dtype).at[slot_of_row].set(hist)
        y0 = (hist[-1], buf, jnp.zeros_like(hist[-1]))
        sol = diffrax.diffeqsolve(
            term,
            RingHeun(),
            t0=0.0,
            t1=float(n_steps),
            dt0=1.0,
            y0=y0,
            args=(model, a),
            saveat=diffrax.SaveAt(ts=ts, fn=lambda t, y, args: y[2] / q),
            stepsize_controller=diffrax.ConstantStepSize(),
            adjoint=diffrax.RecursiveCheckpointAdjoint(checkpoints=checkpoints),
            max_steps=n_steps,
        )
        return sol.ys

    return f


def _tavg_scan(S, n_steps, chunk=None):
    return _scan_ref_fn(S, n_steps)  # plain lax.scan of benchmarks/simulate.py (no checkpointing)


def make_loss(S, n_steps, kind="vbt", chunk=DEFAULT_CHUNK):
    """loss(hist, a, eta=None) = 1 - corr(upper(FC(r_tavg[discard:])), upper(target FC))."""
    import jax

    vbt = S["vbt"]
    tavg = {"vbt": lambda: _tavg_vbt(S, n_steps, chunk), "design1": lambda: _tavg_design1(S, n_steps)}
    f = tavg[kind]() if kind in tavg else _tavg_scan(S, n_steps)
    discard = round(DISCARD_MS / 1.0)
    key = ("target", n_steps)
    if key not in S:  # the FC of the run at a = TARGET_A, fixed
        y = jax.jit(_tavg_vbt(S, n_steps, DEFAULT_CHUNK))(S["hist"], S["a"] * 0 + TARGET_A)
        S[key] = vbt.features.fc(y[discard:, 0])
    target = S[key]

    def loss(hist, a, eta=None):
        y = f(hist, a) if eta is None else f(hist, a, eta)
        return vbt.inference.fc_correlation_loss(vbt.features.fc(y[discard:, 0]), target)

    loss.tavg = f
    return loss


def make_fn(S, name, n_steps):
    """The function of one measured variant, taking (hist, a, eta)."""
    import jax

    kind, _, chunk = name.partition("@")
    chunk = int(chunk) if chunk else DEFAULT_CHUNK
    if kind in ("fwd", "grad_a", "grad_eta_a", "jvp_a"):
        loss = make_loss(S, n_steps, "vbt", chunk)
    elif kind in ("d1_fwd", "d1_grad_a"):
        loss = make_loss(S, n_steps, "design1")
    elif kind == "scan_grad_a":
        loss = make_loss(S, n_steps, "scan")
    else:
        raise ValueError(name)
    if kind in ("fwd", "d1_fwd"):
        return lambda hist, a, eta: loss(hist, a)
    if kind in ("grad_a", "d1_grad_a", "scan_grad_a"):
        return lambda hist, a, eta: jax.value_and_grad(loss, argnums=1)(hist, a)
    if kind == "grad_eta_a":
        return lambda hist, a, eta: jax.value_and_grad(loss, argnums=(1, 2))(hist, a, eta)
    if kind == "jvp_a":
        return lambda hist, a, eta: jax.jvp(lambda x: loss(hist, x), (a,), (jax.numpy.ones_like(a),))
    raise ValueError(name)


def _args(S):
    import jax.numpy as jnp

    return S["hist"], S["a"], jnp.broadcast_to(S["model"].eta, (S["N"],)).astype(S["dtype"])


# ------------------------------------------------------------------------------------- fresh-process measurements
def run_only(args) -> dict:
    name = args.only
    S = _setup(76, x64=name == "fd64")
    import jax
    import numpy as np

    out = {"variant": name, "steps": args.steps, "rss_setup_mb": _maxrss_mb()}
    if name == "fd64":  # float64: jax.grad against central finite differences, w.r.t. a and along a direction in eta
        n = args.fd_steps
        loss = make_loss(S, n)
        hist, a, eta = _args(S)
        lj = jax.jit(loss)
        val, (ga, geta) = jax.jit(jax.value_and_grad(loss, argnums=(1, 2)))(hist, a, eta)
        fd_a = (float(lj(hist, a + FD_H, eta)) - float(lj(hist, a - FD_H, eta))) / (2 * FD_H)
        v = np.random.default_rng(0).normal(size=eta.shape)
        h = 1e-5
        fd_v = (float(lj(hist, a, eta + h * v)) - float(lj(hist, a, eta - h * v))) / (2 * h)
        g_v = float(np.dot(np.asarray(geta), v))
        jv = float(jax.jit(lambda x: jax.jvp(lambda y: loss(hist, y, eta), (x,), (jax.numpy.ones_like(x),))[1])(a))
        rel = lambda x, y: abs(x - y) / max(abs(y), 1e-300)  # noqa: E731
        out.update(
            steps=n,
            loss=float(val),
            grad_a=float(ga),
            fd_a=fd_a,
            rel_err_a=rel(float(ga), fd_a),
            jvp_a=jv,
            rel_err_jvp_a=rel(jv, fd_a),
            grad_eta_dot_v=g_v,
            fd_eta_v=fd_v,
            rel_err_eta=rel(g_v, fd_v),
        )
        return out
    if args.target:  # the target FC as data from disk, as a user's empirical FC would be (not simulated here)
        S[("target", args.steps)] = jax.numpy.asarray(np.load(args.target), S["dtype"])
    fn = make_fn(S, name, args.steps)
    *_, compiled = _compile(fn, *_args(S))
    out["rss_compiled_mb"] = _maxrss_mb()
    out["rss_before_run_mb"] = _rss_now_mb()
    out["peak_reset"] = _reset_peak()
    _block(compiled(*_args(S)))
    out["rss_run_mb"] = _maxrss_mb()
    out["rss_peak_mb"] = max(out["rss_compiled_mb"], out["rss_run_mb"])
    return out


def _subprocess(args, only, steps=None) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--only", only, "--steps", str(steps or args.steps)]
    cmd += ["--fd-steps", str(args.fd_steps)]
    if only != "fd64" and getattr(args, "target_files", None) is not None:
        n = steps or args.steps
        if n not in args.target_files:  # the target FC of this run length, computed once in this process
            import numpy as np

            make_loss(args.S, n)  # computes and keeps the target FC of n steps
            path = os.path.join(args.target_dir, f"target_{n}.npy")
            np.save(path, np.asarray(args.S[("target", n)]))
            args.target_files[n] = path
        cmd += ["--target", args.target_files[n]]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"subprocess {' '.join(cmd)} failed:\n{res.stdout}\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=100_000, help="Heun steps of 0.1 ms (default 100000 = 10 s)")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per variant (best-of and median)")
    p.add_argument("--chunks", default=",".join(map(str, CHUNKS)), help="chunk_steps values for the gradient w.r.t. a")
    p.add_argument("--fd-steps", type=int, default=FD_STEPS, help="steps of the float64 finite-difference check")
    p.add_argument("--json", metavar="PATH", help="also write the results to this JSON file")
    p.add_argument("--no-memory", action="store_true", help="skip the fresh-subprocess peak-RSS measurements")
    p.add_argument("--no-design1", action="store_true", help="skip the Diffrax design-1 variant (slow)")
    p.add_argument("--long", type=int, default=10, help="memory of the gradient at LONG x --steps (0: skip)")
    p.add_argument("--only", help=argparse.SUPPRESS)
    p.add_argument("--target", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.steps < 10 or args.steps % 10:
        p.error("--steps must be a positive multiple of 10 (the 1 ms temporal average)")
    if args.only:
        print(json.dumps(run_only(args)))
        return 0

    import numpy as np

    machine = _machine()
    print("vbtjax gradient benchmark")
    for k in ("date", "cpu", "cores", "memory_gb", "python", "jax", "jaxlib", "diffrax", "equinox", "loadavg_start"):
        print(f"  {k:13s} {machine[k]}")
    S = _setup(76)
    n_steps = args.steps
    print(
        f"  network       MontbrioPazoRoxin (TVB defaults), tvb_connectome(76), Linear(a=0.01), 3.0 mm/ms, dt {DT} ms, "
        f"{n_steps} steps, float32, TemporalAverage(1 ms); loss = fc_correlation_loss(fc(r_tavg[{DISCARD_MS:g} ms:]), "
        f"FC at a={TARGET_A})\n"
    )
    chunks = [int(c) for c in args.chunks.split(",") if c]
    names = ["fwd", *(f"grad_a@{c}" for c in chunks), "grad_eta_a", "jvp_a"]
    if not args.no_design1:
        names += ["d1_fwd", "d1_grad_a"]
    res, compiled = {}, {}
    for name in names:
        fn = make_fn(S, name, n_steps)
        t_lower, t_compile, c = _compile(fn, *_args(S))
        t0 = time.perf_counter()
        out = _block(c(*_args(S)))
        res[name] = dict(lower_s=t_lower, compile_s=t_compile, first_s=time.perf_counter() - t0, times_s=[])
        compiled[name] = c
        res[name]["out"] = out
        print(
            f"compiled {name:14s} trace+lower {t_lower:5.2f} s  XLA {t_compile:5.2f} s  "
            f"first run {res[name]['first_s']:.2f} s"
        )
    slow = {"d1_fwd", "d1_grad_a"}
    for r in range(args.repeats):
        for name in names:
            if name in slow and r >= 1:  # one timed call (plus the first): design 1 is slow
                continue
            t0 = time.perf_counter()
            _block(compiled[name](*_args(S)))
            res[name]["times_s"].append(time.perf_counter() - t0)
    fwd = min(res["fwd"]["times_s"])
    for name, r in res.items():
        r["best_s"] = min(r["times_s"])
        r["median_s"] = statistics.median(r["times_s"])
        r["ratio"] = r["best_s"] / (min(res["d1_fwd"]["times_s"]) if name.startswith("d1_") else fwd)

    # design 1 against vbtjax.simulate (float32): samples and gradient
    checks = {}
    if not args.no_design1:
        import jax

        y_v = np.asarray(jax.jit(make_loss(S, n_steps).tavg)(S["hist"], S["a"]))
        y_d = np.asarray(jax.jit(make_loss(S, n_steps, "design1").tavg)(S["hist"], S["a"]))
        g_v, g_d = float(res[f"grad_a@{DEFAULT_CHUNK}"]["out"][1]), float(res["d1_grad_a"]["out"][1])
        checks["design1_samples_rel"] = float(np.max(np.abs(y_v - y_d)) / np.max(np.abs(y_v)))
        checks["design1_grad_rel"] = abs(g_v - g_d) / abs(g_v)
    mem = {}
    if not args.no_memory:
        print("\nmeasuring peak RSS in fresh subprocesses ...", flush=True)
        import tempfile

        args.S, args.target_files, args.target_dir = S, {}, tempfile.mkdtemp(prefix="vbtjax-gradient-")
        for name in [*names, "scan_grad_a"]:
            mem[name] = _subprocess(args, name)
        if args.long:
            mem["long"] = _subprocess(args, f"grad_a@{DEFAULT_CHUNK}", args.long * n_steps)
            mem["long_fwd"] = _subprocess(args, "fwd", args.long * n_steps)
    print("float64 gradient vs central finite differences (fresh subprocess) ...", flush=True)
    fd = _subprocess(args, "fd64")

    print(f"\n{n_steps} steps, best of {args.repeats} (median); ratio = best / best forward of the same design")
    hdr = f"{'variant':44s} {'trace+lower s':>13s} {'XLA s':>6s} {'best s':>7s} {'(median)':>9s} {'ratio':>6s}"
    hdr += f" {'peak RSS MB':>11s}"
    print(hdr + "\n" + "-" * len(hdr))
    labels = {
        "fwd": "forward, vbtjax.simulate (chunk 1000)",
        "grad_eta_a": "grad w.r.t. (a, eta[76]), chunk 1000",
        "jvp_a": "jvp w.r.t. a (forward mode: vbt.fit default for <= 2 scalars)",
        "d1_fwd": "design 1 (Diffrax RecursiveCheckpoint), forward",
        "d1_grad_a": f"design 1, grad w.r.t. a (checkpoints={D1_CHECKPOINTS})",
        "scan_grad_a": "plain lax.scan, grad w.r.t. a (no checkpoints)",
    }
    for name in [*names, "scan_grad_a"]:
        label = labels.get(name) or f"grad w.r.t. a, chunk_steps={name.split('@')[1]}"
        rss = f"{mem[name]['rss_peak_mb']:.0f}" if name in mem else "-"
        if name in res:
            r = res[name]
            print(
                f"{label:44s} {r['lower_s']:13.2f} {r['compile_s']:6.2f} {r['best_s']:7.3f} ({r['median_s']:7.3f}) "
                f"{r['ratio']:6.2f} {rss:>11s}"
            )
        elif name in mem:
            print(f"{label:44s} {'(memory only)':>47s} {rss:>11s}")
    if "long" in mem:
        print(
            f"peak RSS at {args.long * n_steps} steps ({args.long}x): gradient {mem['long']['rss_peak_mb']:.0f} MB, "
            f"forward {mem['long_fwd']['rss_peak_mb']:.0f} MB"
        )
    g = res[f"grad_a@{DEFAULT_CHUNK}"]["out"]
    print(f"\nloss {float(g[0]):.6g}, d loss/d a {float(g[1]):.6g} (float32)")
    print(
        f"float64, {fd['steps']} steps: d/da jax.grad {fd['grad_a']:.10g}, jvp {fd['jvp_a']:.10g}, central FD "
        f"{fd['fd_a']:.10g} (rel. err {fd['rel_err_a']:.1e}, jvp {fd['rel_err_jvp_a']:.1e}); eta along a random "
        f"direction: {fd['grad_eta_dot_v']:.10g} vs FD {fd['fd_eta_v']:.10g} (rel. err {fd['rel_err_eta']:.1e})"
    )
    for k, v in checks.items():
        print(f"design 1 vs vbtjax.simulate: {k} = {v:.2e}")
    machine["loadavg_end"] = _loadavg()
    print(f"load average at start {machine['loadavg_start']}, at end {machine['loadavg_end']}")
    failed = [k for k in ("rel_err_a", "rel_err_eta", "rel_err_jvp_a") if not fd[k] < FD_RTOL]
    failed += [k for k, v in checks.items() if not v < D1_RTOL]
    if args.json:
        for r in res.values():
            r.pop("out", None)
        with open(args.json, "w") as fh:
            json.dump(
                _str_keys(dict(machine=machine, args=vars(args), results=res, memory=mem, fd64=fd, checks=checks)),
                fh,
                indent=1,
                default=str,
            )
        print(f"wrote {args.json}")
    if failed:
        print(f"\n!!!! FAIL: {failed} !!!!", file=sys.stderr)
    return 1 if failed else 0


def _str_keys(x):
    """JSON wants string keys: tuples and other keys become their str()."""
    if isinstance(x, dict):
        return {k if isinstance(k, str) else str(k): _str_keys(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_str_keys(v) for v in x]
    return x


if __name__ == "__main__":
    sys.exit(main())
