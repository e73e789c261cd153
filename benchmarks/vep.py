"""Virtual Epileptic Patient on patients vbtjax did not simulate: EZ recovery, convergence, fit and wall time.

Patients (``--patients``, default all):

- the 12 TVB patients of ``benchmarks/data/vep/`` (``benchmarks/make_vep_patients.py``, TVB 2.10): Epileptor2D at
  the fast (r = 0.04 /ms) and TVB's default slow (r = 0.00035 /ms) time scale, and TVB's 6-D Epileptor, all with
  conduction delays, raw gain-projected SEEG from TVB's own lead field (point dipoles), 1.2-20 s of signal;
- ``synthetic-<seed>``: vbtjax's own synthetic patients (``vbtjax.vep.synthetic_patient``, EZ drawn per seed);
- ``misspecified``: TVB patient ``tvb_slow_2``'s recording with its channel names shuffled (the gain then belongs
  to other contacts): the model must say that it does not fit, not answer.

First, the gradient of the VEP log density through vbtjax.vep's dense integrator and through ``vbtjax.simulate``,
side by side. Each recording is written to a file in a real format by MNE-Python (EDF, BrainVision or FIF in turn;
the synthetic ones stay ``.npz``), every second patient in a bipolar montage, then run as ``vbtjax vep --seeg FILE
--sensors sensors.txt`` would (``vbtjax.cli.main``), with the CLI's defaults unless given here. Prints, per patient, the
seizing regions (truth), the predicted EZ, the diagnostics (max R-hat, divergences), the posterior predictive check
and the wall time, then precision and recall pooled over the patients whose run was trustworthy (converged and
fits) and over all.

    python benchmarks/vep.py                                   # everything, CLI defaults
    python benchmarks/vep.py --grad-only                       # only the gradient of the log density, side by side
    python benchmarks/vep.py --patients tvb_fast_1 synthetic-3 --warmup 100 --samples 100 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data" / "vep"
FORMATS = (".edf", ".vhdr", ".fif")


def _write(path: Path, data: np.ndarray, sfreq: float, names: list[str]) -> Path:
    """The recording in the format of `path`'s extension, written by MNE-Python (``.npz``: vbtjax's own)."""
    if path.suffix == ".npz":
        from vbtjax.recordings import SEEGRecording

        return SEEGRecording(data, sfreq, names).save(path)
    import mne

    info = mne.create_info(list(names), float(sfreq), ch_types="seeg")
    raw = mne.io.RawArray(np.asarray(data, dtype=float), info, verbose="error")
    if path.suffix == ".fif":
        raw.save(path, overwrite=True, verbose="error")
    else:
        raw.export(path, overwrite=True, verbose="error")
    return path


def _cases(names: list[str]):
    """(name, data, sfreq, contact names, positions (contacts, 3) mm, seizing regions, meta) per patient."""
    import vbtjax as vbt
    from vbtjax import vep

    for name in names:
        if name.startswith("synthetic-"):
            seed = int(name.split("-")[1])
            conn = vbt.datasets.tvb_connectome(76)
            sensors = vbt.sensors.tvb_sensors("seeg")
            rng = np.random.default_rng(seed)
            ez = sorted(rng.choice(76, size=int(rng.integers(1, 3)), replace=False).tolist())
            p = vep.synthetic_patient(conn, sensors, ez, seed=seed)
            pos = np.asarray(sensors.positions)[p.contacts]
            yield name, p.recording.data, p.recording.sfreq, p.recording.ch_names, pos, p.seizing, {"ez": ez}
            continue
        source = "tvb_slow_2" if name == "misspecified" else name
        z = np.load(DATA / f"{source}.npz", allow_pickle=False)
        names_ = [str(c) for c in z["ch_names"]]
        seizing = [int(i) for i in z["seizing"]]
        meta = {"ez": [int(i) for i in z["ez"]], "model": str(z["model"]), "r": float(z["param_r"][0])}
        if name == "misspecified":
            names_ = list(np.random.default_rng(0).permutation(names_))
            seizing = []  # there is nothing to find: the channels do not match their positions
            meta["misspecified"] = "channel names shuffled"
        yield name, z["seeg"], float(z["sfreq"]), names_, np.asarray(z["positions"]), seizing, meta


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = sorted(p.stem for p in DATA.glob("*.npz")) + ["synthetic-101", "synthetic-102", "misspecified"]
    ap.add_argument("--patients", nargs="*", default=default, help="patients (default: all)")
    ap.add_argument("--warmup", type=int, default=None, help="NUTS warmup per chain (default: the CLI's)")
    ap.add_argument("--samples", type=int, default=None, help="draws per chain (default: the CLI's)")
    ap.add_argument("--chains", type=int, default=None, help="chains (default: the CLI's)")
    ap.add_argument("--sampler", default=None, help="nuts or smc (default: the CLI's)")
    ap.add_argument("--json", default=None, help="write the rows to this JSON file")
    ap.add_argument("--keep", default=None, help="folder for the runs' outputs (default: a temporary one)")
    ap.add_argument("--grad-only", action="store_true", help="only time the gradient of the VEP log density")
    args = ap.parse_args()

    import jax

    from vbtjax.cli import main as cli

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__}")
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    _time_gradients()
    if args.grad_only:
        return 0
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="vbtjax-vep-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for k, (name, data, sfreq, names, pos, seizing, meta) in enumerate(_cases(args.patients)):
        folder = work / name
        folder.mkdir(exist_ok=True)
        ext = ".npz" if name.startswith("synthetic") else FORMATS[k % len(FORMATS)]
        montage = "bipolar" if k % 2 else "as-recorded"
        path = _write(folder / f"seeg{ext}", data, sfreq, names)
        lines = [f"{n} {x:.6f} {y:.6f} {z:.6f}" for n, (x, y, z) in zip(names, pos, strict=True)]
        # a shuffled recording keeps the true positions under the shuffled names
        (folder / "sensors.txt").write_text("\n".join(lines) + "\n")
        argv = ["vep", "--seeg", str(path), "--sensors", str(folder / "sensors.txt"), "--montage", montage]
        argv += ["--out", str(folder / "out"), "--quiet", "--no-plot"]
        for opt, v in (("--warmup", args.warmup), ("--samples", args.samples), ("--chains", args.chains)):
            if v is not None:
                argv += [opt, str(v)]
        if args.sampler:
            argv += ["--sampler", args.sampler]
        t0 = time.perf_counter()
        rc = cli(argv)
        seconds = time.perf_counter() - t0
        if rc != 0:
            print(f"{name}: vbtjax vep exited with {rc}", flush=True)
            rows.append({"patient": name, "rc": rc})
            continue
        s = json.loads((folder / "out" / "vep.json").read_text())
        pred = s["predicted_ez"]
        hit = len(set(pred) & set(seizing))
        row = {
            "patient": name,
            "format": ext,
            "montage": montage,
            "feature": s["feature"],
            "seizing": seizing,
            "ez": meta.get("ez"),
            "predicted": pred,
            "tp": hit,
            "max_rhat": s["max_rhat"],
            "divergences": s["divergences"],
            "draws": s["diagnostics"]["draws"],
            "p_ez_chain_spread": s["diagnostics"].get("p_ez_chain_spread"),
            "r2": s["ppc"]["r2"],
            "coverage": s["ppc"]["coverage"],
            "fits": s["fits"],
            "converged": s["converged"],
            "recommended": s["resection_recommended"],
            "seizure_free": s["resection"]["seizure_free_probability"],
            "time_scale": s["time_scale_mean"],
            "seconds": round(seconds, 1),
        }
        rows.append(row)
        print(
            f"{name:16s} {ext:5s} {montage:11s} {s['feature']:5s} seizing {seizing!s:12s} predicted {pred!s:16s} "
            f"R-hat {s['max_rhat']:5.2f} dP {s['diagnostics'].get('p_ez_chain_spread', float('nan')):.2f} "
            f"div {s['divergences']:4d} R2 {s['ppc']['r2']:5.2f} "
            f"cov {s['ppc']['coverage']:.2f} fits {int(s['fits'])} conv {int(s['converged'])} "
            f"{seconds:6.0f} s",
            flush=True,
        )
    done = [r for r in rows if "tp" in r and r["seizing"]]
    for label, sel in (("all", done), ("trustworthy", [r for r in done if r["fits"] and r["converged"]])):
        tp = sum(r["tp"] for r in sel)
        n_pred = sum(len(r["predicted"]) for r in sel)
        n_true = sum(len(r["seizing"]) for r in sel)
        print(
            f"pooled over {label} ({len(sel)} patients): precision {tp / max(n_pred, 1):.2f}, "
            f"recall {tp / max(n_true, 1):.2f}"
        )
    mis = [r for r in rows if r["patient"] == "misspecified" and "fits" in r]
    if mis:
        print(f"misspecified case flagged (no resection recommended): {not mis[0]['recommended']}")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    return 0


def _time_gradients(repeats: int = 20) -> None:
    """Gradient of the VEP log density (power model, time scale fixed at 1, float32, a synthetic patient):
    vbtjax.vep's dense integrator against the same log density through vbtjax.simulate (general delayed path), side
    by side, best of `repeats`."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    import vbtjax as vbt
    from vbtjax import vep

    conn = vbt.datasets.tvb_connectome(76)
    p = vep.synthetic_patient(conn, vbt.sensors.tvb_sensors("seeg"), [12, 40], seed=100)
    post = vep.recording_posterior(conn, vbt.sensors.tvb_sensors("seeg"), p.recording, time_scale=1.0)
    h = vep.rest_history(76, jnp.float32)

    def via_simulate(u):
        x1 = vbt.simulate(post.network(u), 50.0, 0.1, history=h, monitors=vbt.monitors.SubSample(period=0.1))
        logp = jnp.log(jnp.mean(jnp.exp(2 * x1.ys[:, 0]).reshape(25, 20, 76), axis=1))
        r = post.envelope - vep.seeg_log_power(logp, post.gain)
        rc = r - r.mean(axis=0)  # each channel's offset integrated out (flat prior), as vbtjax.vep does
        sigma = post.constrained(u)["sigma"]
        ll = -0.5 * 24 * jnp.log(2 * jnp.pi * sigma**2) - 0.5 * jnp.log(25.0) - jnp.sum(rc**2, 0) / (2 * sigma**2)
        return post.log_prior(u) + jnp.sum(ll)

    u = post.initial_position()
    np.testing.assert_allclose(float(via_simulate(u)), float(post.log_density(u)), rtol=1e-4)
    fns = {
        "vbtjax.vep (dense scan)": eqx.filter_jit(jax.value_and_grad(lambda v: post.log_density(v))),
        "vbtjax.simulate": eqx.filter_jit(jax.value_and_grad(via_simulate)),
    }
    times = {k: [] for k in fns}
    for f in fns.values():
        jax.block_until_ready(f(u))
    for _ in range(repeats):
        for k, f in fns.items():
            t = time.perf_counter()
            jax.block_until_ready(f(u))
            times[k].append(time.perf_counter() - t)
    for k, v in times.items():
        print(
            f"gradient of the VEP log density via {k:26s}: best {1e3 * min(v):6.2f} ms, median "
            f"{1e3 * float(np.median(v)):6.2f} ms",
            flush=True,
        )


if __name__ == "__main__":
    sys.exit(main())
