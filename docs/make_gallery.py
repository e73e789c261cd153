"""Make the model gallery: one figure per model preset (``vbtjax.models.PRESETS``) on TVB's 76-region connectome,
a few regions' time series and the functional connectivity (FC) with its SC-FC correlation, written to
``docs/figures/gallery/<Model>.png``, and the table of measured figures printed as Markdown (``docs/gallery.md``).

    python docs/make_gallery.py                       # every preset, seed 0 (a few minutes on 2 CPU cores)
    python docs/make_gallery.py --models JansenRit --seeds 0 1 --no-figures   # only measure

Each run uses the preset exactly as ``vbtjax simulate --model NAME`` does: its parameters, coupling, speed, noise,
dt, duration, sampling period, transient and initial state, float32. Units: ms, mm, mm/ms.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "figures" / "gallery"
SHOWN_REGIONS = 6  # traces per figure


def measure(name: str, seed: int = 0, duration: float | None = None, connectome=None) -> dict:
    """Simulate the preset `name` and return its signal ``(T, N)``, times (ms), FC and the measured figures."""
    import jax

    import vbtjax as vbt
    from vbtjax.simulation.health import assess, fc_of

    p = vbt.models.preset(name)
    conn = (connectome or vbt.datasets.tvb_connectome(76)).normalised(p.normalise)
    net = vbt.Network(connectome=conn, **p.network_kwargs())
    key = jax.random.key(seed)
    hist = p.initial_state(jax.random.split(key)[0], conn.n_regions)
    t1 = p.duration if duration is None else duration
    t0 = time.perf_counter()
    sol = vbt.simulate(
        net,
        t1=t1,
        dt=p.dt,
        history=hist,
        key=key,
        check="off",
        monitors={"tavg": vbt.monitors.TemporalAverage(period=p.period)},
    )
    wall = time.perf_counter() - t0
    ts, ys = np.asarray(sol.ts["tavg"]), np.asarray(sol.ys["tavg"], dtype=np.float64)
    x = ys[:, p.signal_index, :]
    if p.transform == "sin":
        x = np.sin(x)
    transient = p.fc_transient if duration is None else min(p.fc_transient, 0.25 * t1)
    keep = ts > transient
    fc = fc_of(x[keep])
    w = np.asarray(conn.weights, dtype=np.float64)
    iu = np.triu_indices(conn.n_regions, k=1)
    a, b = (0.5 * (w + w.T))[iu], fc[iu]
    ok = np.isfinite(b)
    r = float(np.corrcoef(a[ok], b[ok])[0, 1]) if ok.sum() > 2 and np.std(b[ok]) > 0 else float("nan")
    health = assess(x[:, None, :], ts, transient=transient)
    return dict(
        name=name,
        preset=p,
        ts=ts,
        x=x,
        fc=fc,
        transient=transient,
        wall=wall,
        health=health,
        sc_fc_r=r,
        fc_mean=float(np.nanmean(b)),
        fc_finite=float(ok.mean()),
        sd=float(np.median(x[keep].std(0))),
    )


def figure(m: dict, path: Path) -> None:
    """Traces of a few regions (offset) and the FC matrix, SC-FC r in the title."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    p, ts, x = m["preset"], m["ts"], m["x"]
    var = p.signal or p.model_class.state_variables[0]
    var = f"sin({var})" if p.transform == "sin" else var
    fig = Figure(figsize=(9.0, 3.4), layout="constrained")
    ax_ts, ax_fc = fig.subplots(1, 2, width_ratios=[1.7, 1])
    show = np.linspace(0, x.shape[1] - 1, SHOWN_REGIONS).round().astype(int)
    keep = ts > m["transient"]
    seg = x[keep][:, show]
    span = float(np.max(np.ptp(seg, axis=0))) or 1.0
    t_show = ts[keep] / 1000.0
    span_s = t_show[-1] - t_show[0] if p.duration >= 10000 else 2.0  # slow models: the whole window
    window = t_show <= t_show[0] + span_s
    for k in range(len(show)):
        ax_ts.plot(t_show[window], seg[window, k] - seg[:, k].mean() - 1.1 * span * k, lw=0.6)
    ax_ts.set_yticks([-1.1 * span * k for k in range(len(show))], [f"region {i}" for i in show], fontsize="small")
    ax_ts.set_xlabel("time (s)")
    ax_ts.set_ylabel(f"{var} (model units, demeaned, offset)")
    ax_ts.set_title(f"{p.model}: {var} of {len(show)} of {x.shape[1]} regions", fontsize="medium")
    off = np.array(m["fc"])
    np.fill_diagonal(off, np.nan)
    vmax = float(np.nanpercentile(np.abs(off), 99)) if np.isfinite(off).any() else 1.0
    im = ax_fc.imshow(off, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
    ax_fc.set_xlabel("region index")
    ax_fc.set_ylabel("region index")
    ax_fc.set_title(f"FC of {var}, SC-FC r = {m['sc_fc_r']:.2f}", fontsize="medium")
    fig.colorbar(im, ax=ax_fc, shrink=0.85).set_label("Pearson correlation")
    fig.suptitle(
        f"{p.coupling} a={p.strength:g}, {p.speed:g} mm/ms, dt={p.dt:g} ms, {p.duration / 1000:g} s "
        f"(first {m['transient'] / 1000:g} s left out of the FC)",
        fontsize="small",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    from PIL import Image  # matplotlib's own dependency: a 64-colour palette keeps the PNGs small

    Image.open(buf).convert("RGB").quantize(colors=64).save(path, optimize=True)


def table_row(m: dict) -> str:
    p = m["preset"]
    return (
        f"| [{p.model}](#{p.model.lower()}) | {p.coupling} a={p.strength:g} | {p.speed:g} | {p.dt:g} | "
        f"{p.duration / 1000:g} | {m['sc_fc_r']:.2f} | {m['fc_mean']:.2f} | {m['fc_finite']:.2f} | "
        f"{m['sd']:.2g} | {'yes' if m['health'].ok else ', '.join(m['health'].codes)} |"
    )


PAGE_HEAD = """# Model gallery

Every model of `vbtjax.models` at its working point (`vbtjax.models.PRESETS`, the default of
`vbtjax simulate --model NAME`) on TVB's 76-region connectome (tvb-data's `connectivity_76`, weights divided by
their maximum): a few regions' time series and the functional connectivity (FC, Pearson correlation of the signal
after the transient) with its correlation to the structural connectivity (SC-FC r, upper triangles, weights
symmetrised). The settings were found by running short simulations from TVB's demos and the literature (each
preset's `reference` and `why` say which, and what the dynamics are); every run here is float32, seed 0, made by

```bash
python docs/make_gallery.py --seeds 0 1 --write-page    # figures in docs/figures/gallery/, this page
```

`vbtjax simulate` checks every run (`vbtjax.simulation.health.assess`): a fixed point, constant channels, a collapse
to a quiet state, saturation or lockstep writes `simulation.npz` but no figure, prints one line saying what to change
and exits 3. The weaker FCs (Wong-Wang models, Zerlaut, ZetterbergJansen) are stated as measured: the Wong-Wang FC is
a BOLD-scale phenomenon (`--monitor bold` over minutes), and ZetterbergJansen's long-range input passes through a
sigmoid that adds at most 0.005 /ms to its 0.12 /ms drives.

| model | coupling | speed (mm/ms) | dt (ms) | run (s) | SC-FC r | mean FC | FC finite | sd | healthy | seed 1 r |
|---|---|---|---|---|---|---|---|---|---|---|
"""


def page(rows: list[str], names: list[str]) -> str:
    """The Markdown of docs/gallery.md: the table, then one section per model."""
    import vbtjax as vbt

    parts = [
        PAGE_HEAD,
        "\n".join(rows),
        "\n\n`sd`: median over regions of the signal's standard deviation (its units).\n",
    ]
    for name in names:
        p = vbt.models.PRESETS[name]
        parts.append(
            f"\n## {name}\n\n![{name} on TVB-76](figures/gallery/{name}.png)\n\n"
            f"`vbtjax simulate --model {name}`: {p.describe()}.\n\n{p.why}\n\n*Source:* {p.reference}.\n"
        )
    return "".join(parts)


def main(argv=None) -> int:
    import vbtjax as vbt

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=sorted(vbt.models.PRESETS), help="presets to run")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0], help="random seeds (figures use the first)")
    parser.add_argument("--duration", type=float, help="ms, instead of each preset's duration")
    parser.add_argument("--no-figures", action="store_true", help="only measure")
    parser.add_argument("--write-page", action="store_true", help="write docs/gallery.md from the measurements")
    args = parser.parse_args(argv)
    print("| model | coupling | speed (mm/ms) | dt (ms) | run (s) | SC-FC r | mean FC | FC finite | sd | healthy |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for name in args.models:
        row = ""
        for i, seed in enumerate(args.seeds):
            m = measure(name, seed, args.duration)
            print(table_row(m) + ("" if len(args.seeds) == 1 else f" seed {seed}, {m['wall']:.1f} s"), flush=True)
            if i == 0:
                row = table_row(m)
                if not args.no_figures:
                    figure(m, OUT / f"{name}.png")
            else:
                row += f" {m['sc_fc_r']:.2f} |" if i == 1 else ""
        rows.append(row if len(args.seeds) > 1 else row + " |")
    if args.write_page:
        (Path(__file__).resolve().parent / "gallery.md").write_text(page(rows, args.models))
    return 0


if __name__ == "__main__":
    sys.exit(main())
