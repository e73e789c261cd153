"""Resting-state twins scored honestly: per HCP subject, the FC r in sample and on the held-out half, the FCD KS
distance, the log-SC baseline, the test-retest ceiling and the wall time of ``fit_fc`` with the settings of
``vbtjax fit`` (SupHopf, 40 Adam steps of 0.1, 1 realisation per step, 4 for the evaluation, seed 0, float32).

Variants (``--variants``, a row each): ``reference`` (global coupling only, ``--heterogeneity none``, the default
before issue 26 part 2), ``MAP`` (global coupling and a heterogeneity map of ``a``: ``strength``, ``eigenmodes:K``;
``eigenmodes:10`` is ``vbtjax fit``'s default on 94 regions), ``MAP+fcdW`` or ``fcdW`` (with the FCD term of the loss,
weight ``W``). Rows of ``--holdouts half --variants eigenmodes:10,eigenmodes:10+fcd0.5``:
``benchmarks/resting_state_models.json`` (``--table`` prints the table of saved rows).

Two holdouts per subject and variant, side by side in one process:

- ``none``: fitted and scored on the whole recording (1 200 volumes), as ``vbtjax fit --holdout none``;
- ``half``: fitted on volumes 1-600, scored on 1-600 (in sample) and on 601-1200 (held out), as
  ``vbtjax fit --holdout half``; its fitted network is also scored on the whole recording (``r full``, on the fit's
  evaluation keys: ``FCFit.whole``), to compare with ``none`` at the same length.

FCD: 60 s windows shifted by 2 s (83 and 3 volumes at TR 720 ms), pairs of windows that do not overlap; KS is the
exact two-sample statistic between the simulated and the empirical FCD values (mean over the 4 realisations).

    python benchmarks/resting_state.py [--data ../shared/data/hcp] [--subjects 101309,102311,102816] [--steps 40]
                                       [--holdouts none,half] [--variants reference,eigenmodes:10] [--json PATH]
    python benchmarks/resting_state.py --table rows1.json rows2.json

About 5-10 min per subject and holdout on 2 busy cores (a ``half`` fit simulates half as long).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path

import jax
import numpy as np

from vbtjax.data.empirical import RestingStateData
from vbtjax.inference import resting_state as rs


def _subject(folder: Path, subject: str) -> RestingStateData:
    d = folder / subject
    return RestingStateData.from_files(
        d / "structural" / "DTI_CM.mat",
        d / "structural" / "DTI_LEN.mat",
        bold=d / "functional" / "TC_rsfMRI_REST1_LR.mat",
        tr=720.0,
        name=f"HCP {subject}",
    )


def _variant(spec: str) -> dict:
    """``reference`` (global coupling only), or ``MAP`` / ``MAP+fcdW`` / ``fcdW``: a heterogeneity map of a
    (``strength``, ``eigenmodes:K``) and/or the FCD term of the loss with weight ``W``."""
    kwargs = {}
    for part in spec.split("+"):
        if part == "reference":
            continue
        if part.startswith("fcd"):
            kwargs["fcd_weight"] = float(part[3:])
        else:
            kwargs["heterogeneity"] = part
    return kwargs


def _run(data: RestingStateData, holdout: str, steps: int, variant: str = "reference") -> dict:
    t = time.perf_counter()
    res = rs.fit_fc(data, steps=steps, holdout=holdout, key=jax.random.key(0), progress=False, **_variant(variant))
    wall = time.perf_counter() - t
    a = np.asarray(res.net.model.a)
    row = {
        "variant": variant,
        "holdout": holdout,
        "a_range": [float(a.min()), float(a.max())],
        "wall_s": wall,
        "coupling": float(res.params["coupling.a"]),
        "ks_whole": float(np.mean(res.whole.fcd_ks)) if res.whole is not None else None,
        "baseline": res.baseline,
        "ceiling": res.ceiling,
        "r_start": float(np.mean(res.r_start)),
        "r_in": float(np.mean(res.r)),
        "r_in_sd": float(np.std(res.r)),
        "ks_in": float(np.mean(res.train.fcd_ks)),
    }
    if res.test is not None:
        row |= {
            "r_test": float(np.mean(res.test.r)),
            "r_test_sd": float(np.std(res.test.r)),
            "r_test_mean_fc": res.test.r_mean_fc,
            "ks_test": float(np.mean(res.test.fcd_ks)),
            "baseline_test": res.test.baseline,
            "r_full": float(np.mean(res.whole.r)),
        }
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hcp"))
    p.add_argument("--subjects", default="101309,102311,102816")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--holdouts", default="none,half")
    p.add_argument("--variants", default="reference", help="comma-separated: reference, strength, eigenmodes:10, "
                   "eigenmodes:10+fcd0.5, fcd0.5 ...")  # fmt: skip
    p.add_argument("--json", default=None, metavar="PATH")
    p.add_argument("--table", nargs="+", metavar="JSON", help="only print the table of rows saved with --json")
    args = p.parse_args()
    if args.table:
        _print_table([r for f in args.table for r in json.loads(Path(f).read_text())])
        return
    load = os.getloadavg()
    print(
        f"# vbtjax resting-state benchmark, {datetime.date.today()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, load {load[0]:.1f}, jax {jax.__version__}, float32, {args.steps} steps",
        flush=True,
    )
    rows = []
    for subject in args.subjects.split(","):
        data = _subject(Path(args.data), subject)
        for variant in args.variants.split(","):
            for holdout in args.holdouts.split(","):
                row = {"subject": subject, **_run(data, holdout, args.steps, variant)}
                rows.append(row)
                print(json.dumps(row), flush=True)
                if args.json:
                    Path(args.json).write_text(json.dumps(rows, indent=1))
    print(f"# load at the end {os.getloadavg()[0]:.1f}")
    _print_table(rows)


def _print_table(rows: list[dict]) -> None:
    head = (
        "subject | variant | holdout | baseline | ceiling | r start | r in sample | FCD KS in | r held out | "
        "FCD KS held out"
    )
    print(f"\n| {head} | r full (half-fitted) | coupling 1/ms | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        g = r.get
        held = (f"{g('r_test'):.3f} ± {g('r_test_sd'):.3f} | {g('ks_test'):.3f} | {g('r_full'):.3f}"
                if "r_test" in r else "- | - | -")  # fmt: skip
        print(
            f"| {r['subject']} | {r.get('variant', 'reference')} | {r['holdout']} | {r['baseline']:.3f} | "
            f"{r['ceiling']:.3f} | {r['r_start']:.3f} | "
            f"{r['r_in']:.3f} ± {r['r_in_sd']:.3f} | {r['ks_in']:.3f} | {held} | {r['coupling']:.3g} | "
            f"{r['wall_s']:.0f} |"
        )


if __name__ == "__main__":
    main()
