"""Personalise a whole-brain network to one person's resting-state FC by gradient descent, from Python.

The HCP subject embedded in vbtjax (94 regions: streamline counts, tract lengths in mm, FC of 1 200 BOLD volumes at
TR = 720 ms) and the Hopf network at the BOLD time scale (Deco et al. 2017; :mod:`vbtjax.inference.resting_state`).
The global coupling is fitted with Optax on ``1 - r(FC_sim, FC_emp)``, gradients through the whole noisy delayed
simulation (25 000 steps of 40 ms per evaluation), the noise drawn anew at every step. ``vbtjax fit`` does the same
from the command line; this script spells the steps out so you can change the loss or what is fitted.

    python examples/fit_hcp_subject.py --steps 40 --out figures

Units: time in ms, lengths in mm, coupling in 1/ms.
"""

import argparse
import time
from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")  # write files only, no window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import vbtjax as vbt  # noqa: E402
from vbtjax import inference as vi  # noqa: E402
from vbtjax.inference import resting_state as rs  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40, help="Adam steps (default: 40)")
    parser.add_argument("--samples", type=int, default=None, help="BOLD volumes per simulation (default: the data's)")
    parser.add_argument("--out", default=".", help="folder for fit_hcp_subject.png (default: current folder)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    args = parser.parse_args(argv)

    # 1. The subject: connectome (weights as given, lengths in mm) and empirical FC.
    data = vbt.datasets.hcp_subject("101309")
    n_samples = args.samples or data.n_samples
    emp_fc = jax.numpy.asarray(data.fc)
    print(
        f"{data.name}: {data.n_regions} regions; structural baseline r(log1p(SC), FC) = {data.sc_fc_correlation():.3f}"
    )

    # 2. The network (max-normalised SC, Difference coupling, delays, noise) and what is fitted, with a constraint:
    #    the global coupling in (0, bound), the bound keeping steps of dt ms stable.
    dt = rs.default_dt(data.tr)  # 40 ms
    net = rs.fc_network(data.connectome)
    selection = rs.fc_parameters(net, dt, ("coupling",))

    # 3. The loss: simulate BOLD-like series as long as the recording, compare FCs. key: this step's noise.
    def loss_fn(net, key):
        sim_fc = rs.simulated_fc(net, data.tr, n_samples, dt, key=key)
        return vi.fc_correlation_loss(sim_fc, emp_fc)

    t0 = time.perf_counter()
    res = vi.fit(loss_fn, net, selection, optax.adam(0.1), steps=args.steps, key=jax.random.key(args.seed))
    print(f"fitted coupling.a = {float(res.params['coupling.a']):.4g} /ms in {time.perf_counter() - t0:.1f} s")

    # 4. Evaluate on fresh noise.
    run = jax.jit(lambda net, key: rs.simulated_fc(net, data.tr, n_samples, dt, key=key))
    keys = jax.random.split(jax.random.key(args.seed + 1), 3)
    fcs = [np.asarray(run(res.net, k)) for k in keys]
    r = [float(vbt.features.fc_correlation(f, emp_fc)) for f in fcs]
    print(f"FC correlation of the fitted model: {np.mean(r):.3f} +- {np.std(r):.3f} (3 realisations)")

    fig, (ax_e, ax_s, ax_l) = plt.subplots(1, 3, figsize=(15, 4.5), layout="constrained")
    for ax, m, title in ((ax_e, np.asarray(data.fc), "empirical FC"), (ax_s, np.mean(fcs, 0), "simulated FC")):
        m = m.copy()
        np.fill_diagonal(m, np.nan)
        im = ax.imshow(m, cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_title(title)
        ax.set_xlabel("region")
        ax.set_ylabel("region")
    fig.colorbar(im, ax=[ax_e, ax_s], shrink=0.8, label="Pearson correlation")
    ax_l.plot(1 - np.asarray(res.losses), label="r during the fit")
    ax_l.axhline(data.sc_fc_correlation(), color="C3", ls="--", label="log1p(SC) baseline")
    ax_l.axhline(np.mean(r), color="C2", ls=":", label="fitted (fresh noise)")
    ax_l.set_xlabel("Adam step")
    ax_l.set_ylabel("FC correlation r")
    ax_l.legend()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    png = out / "fit_hcp_subject.png"
    fig.savefig(png, dpi=100)
    print(f"wrote {png}")


if __name__ == "__main__":
    main()
