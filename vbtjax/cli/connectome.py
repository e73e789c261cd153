"""``vbtjax connectome``: a person's connectome from a parcellation and a tractogram (see :mod:`vbtjax.structural`).

Writes to ``--out``: ``connectome.npz`` and ``connectome.zip`` (TVB's connectivity format), both readable by
``vbtjax simulate --connectome``; ``regions.tsv`` (label, name, voxels, volume in mm^3, centre in mm of each
region); ``report.json`` (what happened to every streamline, the options, timings, versions; also printed) and
``connectome.png`` (weights on a log scale, tract lengths, region centres in three views).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .. import files
from .common import PROG, Stages, UsageError, jsonable, label_ticks, save_figure, version, write_json

DEFAULT_OUT = "vbtjax-connectome"

EPILOG = """\
units and conventions: points in world mm (RAS+, scanner or template space) for every format: .tck stores world
mm, .trk stores voxmm (converted with its header's vox_to_ras by nibabel), .trx stores world mm. The
parcellation's affine maps its voxel centres to world mm; end points are looked up through its inverse. Weights
W[i, j] count streamlines from region j to region i (symmetric unless --directed); tract lengths in mm.

every streamline is accounted for in report.json: too short (--min-length), an end point outside the image, an end
point in background with no labelled voxel within --radius mm (unassigned), both ends in one region
(self-connections, dropped unless --self-connections keep), or in the connectome.

examples:
  vbtjax connectome --tractogram tracks.tck --parcellation aparc+aseg.nii.gz --lut FreeSurferColorLUT.txt \\
                    --regions 8-13,16-18,26,47-54,58,1001-1035,2001-2035 --min-length 10 --out sub-01
  vbtjax connectome --tractogram tracks.trk --parcellation atlas.nii.gz --lut atlas.tsv --normalise volume
  vbtjax simulate --connectome sub-01/connectome.zip
"""


def add_connectome(sub) -> None:
    """Add the ``connectome`` subcommand to the subparsers ``sub``."""
    from ..data.structural import DEFAULT_RADIUS, LENGTH_CHOICES, NORMALISE_CHOICES, SELF_CONNECTION_CHOICES

    p = sub.add_parser(
        "connectome",
        help="build a connectome from a parcellation and a tractogram (writes .npz, TVB .zip, report, .png)",
        description=(
            "Structural mapping: assign both end points of every streamline to the regions of an integer label "
            "image (through its affine, world mm), count the streamlines between each pair of regions (weights) "
            "and average their lengths (tract lengths, mm). Units: mm."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("inputs")
    g.add_argument(
        "--tractogram", metavar="PATH", required=True, help="streamlines: .tck (MRtrix), .trk (TrackVis), .trx"
    )
    g.add_argument(
        "--parcellation",
        metavar="PATH",
        required=True,
        help="integer label image nibabel reads (.nii, .nii.gz, .mgz); 0 = background",
    )
    g.add_argument(
        "--lut",
        metavar="PATH",
        help="region names: FreeSurfer-style LUT.txt (index name R G B A) or a TSV (index, name); default: the "
        "integer labels",
    )
    g.add_argument(
        "--regions",
        metavar="LIST",
        help="labels that are regions, in order, e.g. 1-34,101,102 (default: every non-zero label); others count "
        "as background (e.g. leave out white matter)",
    )
    g = p.add_argument_group("mapping")
    g.add_argument(
        "--radius",
        metavar="MM",
        type=float,
        default=DEFAULT_RADIUS,
        help="end points in background go to the nearest labelled voxel within this distance in mm; 0 = no search "
        f"(default {DEFAULT_RADIUS:g})",
    )
    g.add_argument(
        "--min-length", metavar="MM", type=float, default=0.0, help="leave out shorter streamlines, mm (default 0)"
    )
    g.add_argument(
        "--normalise",
        choices=NORMALISE_CHOICES,
        default="none",
        help="weights: none = streamline counts; volume = counts / (V_i + V_j), region volumes in mm^3; count = "
        "counts / streamlines in the tractogram (default none)",
    )
    g.add_argument(
        "--lengths",
        choices=LENGTH_CHOICES,
        default="mean",
        help="tract length of a pair: mean or median streamline length, mm (default mean)",
    )
    g.add_argument(
        "--directed",
        action="store_true",
        help="keep the direction: W[i, j] counts streamlines that start in j and end in i (default: symmetric)",
    )
    g.add_argument(
        "--self-connections",
        choices=SELF_CONNECTION_CHOICES,
        default="drop",
        help="streamlines with both ends in one region: drop (counted in the report) or keep on the diagonal "
        "(default drop)",
    )
    g = p.add_argument_group("output")
    g.add_argument("--out", metavar="DIR", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    g.add_argument("--no-plot", action="store_true", help="do not write connectome.png")
    g.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=run_connectome)


def _parse_regions(text: str | None) -> list[int] | None:
    if text is None:
        return None
    values: list[int] = []
    for part in (s.strip() for s in text.split(",")):
        if not part:
            continue
        try:
            if "-" in part:
                lo, hi = (int(v) for v in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                values.extend(range(lo, hi + 1))
            else:
                values.append(int(part))
        except ValueError:
            raise UsageError("--regions", f"expected integers and ranges like 1-34,101, got {part!r}") from None
    if not values:
        raise UsageError("--regions", "give at least one label, e.g. 1-34")
    return values


def run_connectome(args: argparse.Namespace) -> int:
    """``vbtjax connectome``: read, map, save, report, plot. Returns the exit code."""
    import jax

    from ..data.structural import Parcellation, build_connectome

    t_start = time.perf_counter()
    for option, value in (("--tractogram", args.tractogram), ("--parcellation", args.parcellation)):
        if not Path(value).expanduser().exists():
            raise UsageError(option, f"{value} does not exist")
    if args.lut is not None and not Path(args.lut).expanduser().is_file():
        raise UsageError("--lut", f"{args.lut} does not exist")
    for option, value in (("--radius", args.radius), ("--min-length", args.min_length)):
        if not (np.isfinite(value) and value >= 0):
            raise UsageError(option, f"must be a finite number of mm >= 0, got {value:g}")
    regions = _parse_regions(args.regions)
    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        raise UsageError("--out", f"{out} exists and is not a folder")

    caught: list[str] = []
    stages = Stages(3, quiet=args.quiet)
    with warnings.catch_warnings(record=True) as records, jax.enable_x64(True):
        warnings.simplefilter("always")
        stages(f"reading the parcellation {args.parcellation}")
        t = time.perf_counter()
        try:
            parc = Parcellation.load(Path(args.parcellation).expanduser(), args.lut, regions=regions)
        except (ValueError, TypeError, FileNotFoundError) as e:
            option = "--regions" if str(e).startswith("regions") else "--lut" if str(e).startswith("lut") else None
            raise UsageError(option or "--parcellation", str(e)) from None
        t_parc = time.perf_counter() - t
        stages(f"reading the tractogram {args.tractogram} and mapping its streamlines to {len(parc.names)} regions")
        try:
            conn, report = build_connectome(
                Path(args.tractogram).expanduser(),
                parc,
                radius=args.radius,
                min_length=args.min_length,
                normalise=args.normalise,
                lengths=args.lengths,
                directed=args.directed,
                self_connections=args.self_connections,
            )
        except (ValueError, TypeError, FileNotFoundError) as e:
            raise UsageError("--tractogram" if str(e).startswith("tractogram:") else None, str(e)) from None
        timings = dict(report.timings)
        timings["load parcellation"] = t_parc
        timings["total"] = sum(v for k, v in timings.items() if k != "total")
        report = dataclasses.replace(report, timings=timings)
        stages("writing connectome.npz, connectome.zip, regions.tsv, report.json" + ("" if args.no_plot else ", .png"))
        out.mkdir(parents=True, exist_ok=True)
        written = [conn.save(out / "connectome.npz"), conn.save(out / "connectome.zip")]
        files.write_text(out / "regions.tsv", parc.table())
        written.append(out / "regions.tsv")
        weights = np.asarray(conn.weights, np.float64)
        lengths = np.asarray(conn.lengths, np.float64)
    for w in records:
        if not str(w.message).startswith("build_connectome:"):  # those notes are in the report
            caught.append(str(w.message))
    doc = jsonable(
        {
            "command": "vbtjax connectome",
            "argv": ["vbtjax", *getattr(args, "argv", [])],
            "report": report.to_dict(),
            "regions": {
                "labels": parc.label_values,
                "names": list(parc.names),
                "n_voxels": parc.n_voxels,
                "volumes_mm3": parc.volumes,
                "centres_mm": parc.centres,
            },
            "warnings": caught,
            "outputs": [p.name for p in written] + ["report.json"] + ([] if args.no_plot else ["connectome.png"]),
            "versions": {"vbtjax": version(), "nibabel": _nibabel_version(), "numpy": np.__version__},
            "wall_time_s": time.perf_counter() - t_start,
        }
    )
    write_json(out / "report.json", doc)
    written.append(out / "report.json")
    if not args.no_plot:
        _plot(out / "connectome.png", weights, lengths, parc, report)
        written.append(out / "connectome.png")
    for text in caught:  # one line each, as every vbtjax warning (kept in report.json too)
        print(f"{PROG} connectome: warning: {' '.join(text.split())}", file=sys.stderr)
    if not args.quiet:
        print(report)
        for path in written:
            print(f"wrote {path}")
    return 0


def _nibabel_version() -> str:
    import nibabel

    return nibabel.__version__


def _plot(path: Path, weights: np.ndarray, lengths: np.ndarray, parc: Any, report: Any) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    n = weights.shape[0]
    fig = Figure(figsize=(16, 10), layout="constrained")
    FigureCanvasAgg(fig)
    gs = fig.add_gridspec(2, 3)
    ax_w, ax_h, ax_t = (fig.add_subplot(gs[0, k]) for k in range(3))
    positive = weights[weights > 0]
    unit = {"none": "streamlines", "volume": "streamlines / mm^3", "count": "fraction of streamlines"}
    if positive.size:
        im = ax_w.imshow(
            np.ma.masked_less_equal(weights, 0),
            norm=LogNorm(vmin=positive.min(), vmax=positive.max()),
            cmap="viridis",
            interpolation="nearest",
        )
        fig.colorbar(im, ax=ax_w, shrink=0.8, label=unit[report.normalise] + " (log scale)")
    else:
        ax_w.imshow(weights, cmap="viridis", interpolation="nearest")
    ax_w.set_title(f"weights W[target, source] ({n} regions)")
    label_ticks(ax_w, list(parc.names), "both")
    ax_w.set_xlabel("source region")
    ax_w.set_ylabel("target region")

    mask = weights > 0 if report.directed else np.triu(weights > 0)
    pair_lengths = lengths[mask]
    if pair_lengths.size:
        ax_h.hist(pair_lengths, bins=min(60, max(10, pair_lengths.size // 5)), color="C0", alpha=0.8)
        ax_h.axvline(np.median(pair_lengths), color="C3", ls="--", label=f"median {np.median(pair_lengths):.1f} mm")
        ax_h.legend(loc="best", fontsize="small")
    ax_h.set_xlabel(f"tract length (mm, {report.lengths} over the streamlines of a pair)")
    ax_h.set_ylabel("connected region pairs")
    ax_h.set_title("tract lengths")

    ax_t.axis("off")
    ax_t.text(0.0, 1.0, _wrap(str(report)), va="top", ha="left", family="monospace", fontsize=7.5)

    strength = weights.sum(axis=0) + weights.sum(axis=1)
    size = 10 + 140 * strength / strength.max() if strength.max() > 0 else np.full(n, 20.0)
    c = parc.centres
    if report.directed:
        iu = np.nonzero(weights + weights.T > 0)
        sym = weights + weights.T
    else:
        iu = np.nonzero(np.triu(weights, 1) > 0)
        sym = weights
    order = np.argsort(sym[iu])[::-1][: min(300, iu[0].size)]
    edges = [(iu[0][k], iu[1][k]) for k in order]
    top = sym[iu][order].max() if order.size else 1.0
    for k, (a, b, title) in enumerate(((0, 1, "axial (x, y)"), (0, 2, "coronal (x, z)"), (1, 2, "sagittal (y, z)"))):
        ax = fig.add_subplot(gs[1, k])
        for i, j in edges:
            ax.plot([c[i, a], c[j, a]], [c[i, b], c[j, b]], color="0.4", lw=0.5, alpha=0.15 + 0.6 * sym[i, j] / top)
        ax.scatter(c[:, a], c[:, b], s=size, c=strength, cmap="plasma", edgecolors="k", linewidths=0.3, zorder=3)
        for i in np.argsort(-strength, kind="stable")[:5]:  # the five strongest regions, by name
            ax.annotate(str(parc.names[i]), (c[i, a], c[i, b]), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xlabel("xyz"[a] + " (mm, RAS+)")
        ax.set_ylabel("xyz"[b] + " (mm, RAS+)")
        ax.set_title(f"region centres, {title}; strongest {len(edges)} connections; top-5 strength named", fontsize=9)
    fig.suptitle(
        f"connectome from {Path(report.tractogram_source).name} and {Path(report.parcellation_source).name}",
        fontsize="medium",
    )
    save_figure(fig, path, dpi=90)


def _wrap(text: str, width: int = 78) -> str:
    import textwrap

    return "\n".join(textwrap.fill(line, width, subsequent_indent="    ") for line in text.splitlines())
