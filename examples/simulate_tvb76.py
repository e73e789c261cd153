"""Simulate TVB's 76-region connectome with the Montbrió–Pazó–Roxin model, from Python.

The same network as ``vbtjax simulate`` with no options (see ``vbtjax simulate --help`` for why these parameters):
each region is bistable between a low-rate "down" and a high-rate "up" state, noise kicks regions between the two,
and the coupling is set so that the network sits at the edge of its bistable regime, where regions switch states and
recruit their neighbours.

    python examples/simulate_tvb76.py --duration 4000 --out figures

Units: time in ms, tract lengths in mm, conduction speed in mm/ms.
"""

import argparse
import time
from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")  # write files only, no window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import vbtjax as vbt  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=4000.0, help="simulated time in ms (default: 4000)")
    parser.add_argument("--out", default=".", help="folder for simulate_tvb76.png (default: current folder)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    args = parser.parse_args(argv)

    # 1. The structural connectome: weights[i, j] is the connection from region j to region i, lengths in mm.
    #    TVB's weights are stored un-normalised; divide by the largest one so the coupling strength is comparable
    #    across connectomes.
    conn = vbt.datasets.tvb_connectome(76).normalised("max")

    # 2. The network: a neural mass model on every region, a coupling function, conduction delays and noise.
    model = vbt.models.MontbrioPazoRoxin(tau=1.0, eta=-4.6, J=14.5, Delta=0.7)  # TVB's parameter names
    net = vbt.Network(
        model=model,
        connectome=conn,
        coupling=vbt.coupling.Linear(a=0.1),  # c_i = a * sum_j W_ij r_j(t - L_ij / speed)
        speed=3.0,  # mm/ms: delays up to ~50 ms on this connectome
        noise=vbt.noise.Additive(nsig=np.array([0.01, 0.04])),  # one nsig per state variable (r, V)
    )

    # 3. Simulate: stochastic Heun with dt = 0.01 ms (tau = 1 ms), recording 1 ms temporal averages.
    #    The key drives both the noise and the random initial state.
    dt = 0.01
    t0 = time.perf_counter()
    sol = vbt.simulate(
        net,
        t1=args.duration,
        dt=dt,
        solver=vbt.Heun(),
        monitors={"tavg": vbt.monitors.TemporalAverage(period=1.0)},
        key=jax.random.key(args.seed),
    )
    t = np.asarray(sol.ts["tavg"])  # (T,) ms
    y = np.asarray(sol.ys["tavg"])  # (T, 2, 76): time, state variable (r, V), region
    print(f"simulated {args.duration:g} ms ({sol.n_steps} steps) in {time.perf_counter() - t0:.1f} s")
    if not np.all(np.isfinite(y)):
        raise SystemExit("the simulation diverged (NaN); try a smaller dt")

    # 4. Functional connectivity: Pearson correlation between regions of the firing rate r, after a transient.
    r = y[:, 0, :]
    transient = min(1000.0, 0.25 * args.duration)  # ms
    fc = np.corrcoef(r[t > transient].T)  # (76, 76)
    np.fill_diagonal(fc, np.nan)  # the diagonal is 1 by definition; leave it out of the colour scale

    # 5. Figure: every region's rate over time, and the FC matrix.
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.5), width_ratios=[1.8, 1], layout="constrained")
    ax1.plot(t, r, lw=0.4, alpha=0.7)
    ax1.axvspan(0, transient, color="0.85", zorder=-1)
    ax1.set(xlabel="time (ms)", ylabel="firing rate r (dimensionless)", title="MPR on TVB-76: r of every region")
    vmax = np.nanmax(np.abs(fc))
    im = ax2.imshow(fc, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
    ax2.set(xlabel="region", ylabel="region", title=f"FC of r (t > {transient:g} ms)")
    fig.colorbar(im, ax=ax2, label="Pearson correlation")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "simulate_tvb76.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
