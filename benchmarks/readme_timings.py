"""The timings README.md quotes, measured the way a user meets them: each command in a fresh process, in an empty
folder, from start to exit (imports, compilation, run, output files and figures included).

For each command it prints the wall time, the CPU time of the process and its children (user + sys), the CPU time
divided by the cores (a lower bound for the wall time on an idle machine, reached when every core is busy all the
time) and the load average before and after. On a machine shared with other jobs the wall time grows with the load
and the CPU time far less, so both are given; a quoted time is compared with the interval
[CPU / cores, CPU] that an idle machine's wall time would fall in (``fits``), and with the wall time measured.

    python benchmarks/readme_timings.py                      # every entry (~13 min on 2 idle cores)
    python benchmarks/readme_timings.py --list               # the entries and what the README says
    python benchmarks/readme_timings.py --only bold,demo     # some of them
    python benchmarks/readme_timings.py --json timings.json  # also write the results

Entries (README.md quote in brackets; "-" where the README quotes no time):

  simulate        ``vbtjax simulate``: the set-up's main job, 4 s of the 76-region network at dt = 0.01 ms [-]
  bold            ``vbtjax simulate --monitor bold``: 60 s of BOLD ["~30 s on 2 cores"]
  demo            ``write_demo`` + ``vbtjax connectome`` on the demo tractogram (2 000 streamlines) [-]
  fit             ``vbtjax fit``: the embedded HCP subject, 40 steps [README: -; docs/inference.md: "about 3 minutes"]
  fit-python      the README's Python ``fit_fc(data, steps=40)`` [-]
  vep-python      the README's VEP snippet: synthetic patient, ``recording_posterior``, ``infer_ez`` ["~4 min, 2 cores"]
  vep             ``vbtjax vep --synthetic-ez 12,40 --seed 1`` (docs/getting-started.md) [-]
  structural      ``benchmarks/structural.py --repeats 1``: 10^6 streamlines to a connectome, the .tck end to end
                  ["a million streamlines in about 3 s"]; only that run is compared, not the file generation

The README's Performance section (0.35-0.45 s for 10 s of the 76-region network, gradients, memory) is measured by
``benchmarks/simulate.py``, ``gradient.py`` and ``bold.py`` and is not repeated here.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]


class Entry(NamedTuple):
    name: str
    argv: list[str]
    quote: str  # the README's words, "" when none
    quoted_s: float | None  # the quote in seconds
    what: str


VEP_SNIPPET = """
import jax
import vbtjax as vbt

conn, sensors = vbt.datasets.tvb_connectome(76), vbt.sensors.tvb_sensors("seeg")
patient = vbt.vep.synthetic_patient(conn, sensors, ez=[12, 40], seed=1)
post = vbt.vep.recording_posterior(conn, sensors, patient.recording)
res = vbt.vep.infer_ez(post, key=jax.random.key(0), labels=conn.labels)
print(res.verdict)
print(res.ranking[:3])
"""

FIT_SNIPPET = """
import vbtjax as vbt

data = vbt.datasets.hcp_subject("101309")
res = vbt.inference.fit_fc(data, steps=40)
print(res.params["coupling.a"], res.r, res.baseline)
"""

DEMO_SCRIPT = """
import subprocess, sys
import vbtjax as vbt

vbt.datasets.write_demo("demo")
sys.exit(subprocess.call(sys.argv[1:] + ["connectome", "--tractogram", "demo/tracks.trk", "--parcellation",
    "demo/parcellation.nii.gz", "--lut", "demo/parcellation.tsv", "--out", "demo/connectome"]))
"""


def vbtjax_command() -> list[str]:
    exe = shutil.which("vbtjax")
    return [exe] if exe else [sys.executable, "-m", "vbtjax.cli"]


def entries() -> list[Entry]:
    vbtjax, py = vbtjax_command(), sys.executable
    return [
        Entry("simulate", [*vbtjax, "simulate"], "", None, "vbtjax simulate (README set-up)"),
        Entry(
            "bold",
            [*vbtjax, "simulate", "--monitor", "bold"],
            "~30 s on 2 cores",
            30.0,
            "vbtjax simulate --monitor bold",
        ),
        Entry("demo", [py, "-c", DEMO_SCRIPT, *vbtjax], "", None, "write_demo + vbtjax connectome"),
        Entry("fit", [*vbtjax, "fit"], "docs: about 2 minutes", 120.0, "vbtjax fit (40 steps, embedded subject)"),
        Entry("fit-python", [py, "-c", FIT_SNIPPET], "", None, "README: fit_fc(data, steps=40)"),
        Entry("vep-python", [py, "-c", VEP_SNIPPET], "~4 min, 2 cores", 240.0, "README: infer_ez (VEP snippet)"),
        Entry("vep", [*vbtjax, "vep", "--synthetic-ez", "12,40", "--seed", "1"], "", None, "vbtjax vep --synthetic-ez"),
        Entry(
            "structural",
            [py, str(ROOT / "benchmarks" / "structural.py"), "--repeats", "1", "--json", "structural.json"],
            "a million streamlines in about 3 s",
            3.0,
            "10^6 streamlines -> connectome (.tck, end to end)",
        ),
    ]


def run_entry(entry: Entry, cores: int, timeout: float) -> dict:
    env = dict(os.environ, MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix=f"readme-{entry.name}-") as folder:
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        try:
            res = subprocess.run(entry.argv, cwd=folder, env=env, capture_output=True, text=True, timeout=timeout)
            rc, tail = res.returncode, (res.stdout + res.stderr)[-2000:]
        except subprocess.TimeoutExpired:
            rc, tail = "timeout", ""
        wall = time.perf_counter() - t
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        measured = wall
        if entry.name == "structural" and rc == 0:  # the quote is the .tck run alone, not the file generation
            measured = json.loads((Path(folder) / "structural.json").read_text())["tck"]["wall_s"]
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    out = {
        "name": entry.name,
        "what": entry.what,
        "quote": entry.quote,
        "quoted_s": entry.quoted_s,
        "rc": rc,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "idle_lower_bound_s": round(cpu / cores, 1),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }
    if entry.name == "structural":
        out["measured_s"] = round(measured, 1)  # CPU/idle figures are for the whole benchmark
    if rc != 0:
        out["output_tail"] = tail
    if entry.quoted_s is not None and rc == 0:
        q = entry.quoted_s
        if entry.name == "structural":  # an in-process wall time: compared as measured
            out["fits"] = bool(q / 2 <= measured <= 2 * q)
        else:  # an idle machine's wall time, somewhere in [CPU / cores, CPU], within 2x of the quote
            out["fits"] = bool(cpu / cores <= 2 * q and cpu >= q / 2)
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fmt(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", help="comma-separated entry names (default: all)")
    p.add_argument("--list", action="store_true", help="list the entries and exit")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per command (default 1800)")
    p.add_argument("--json", help="write the results here")
    a = p.parse_args()
    table = entries()
    if a.list:
        for e in table:
            print(f"{e.name:12s} {e.what:52s} README: {e.quote or '-'}")
        return 0
    if a.only:
        wanted = [w.strip() for w in a.only.split(",") if w.strip()]
        unknown = sorted(set(wanted) - {e.name for e in table})
        if unknown:
            p.error(f"--only: unknown entries {unknown}; --list shows them")
        table = [e for e in table if e.name in wanted]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    cpu_name = cpu_model()
    now = f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC"
    print(f"# README timings, {now}, {cpu_name}, {cores} cores, python {platform.python_version()}")
    print(f"# load average at the start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if os.getloadavg()[0] > 0.5 * cores:
        print(f"# warning: the machine is busy (load {os.getloadavg()[0]:.1f} on {cores} cores): wall times are long")
    print(f"{'entry':12s} {'wall':>9s} {'cpu':>9s} {'cpu/cores':>9s}  {'README':22s} {'load':>11s}  rc")
    results = []
    for e in table:
        r = run_entry(e, cores, a.timeout)
        results.append(r)
        shown = fmt(r.get("measured_s", r["wall_s"]))
        quote = e.quote + (" (fits)" if r.get("fits") else " (DOES NOT FIT)" if "fits" in r else "")
        load = f"{r['load_before'][0]:.1f}->{r['load_after'][0]:.1f}"
        print(
            f"{e.name:12s} {shown:>9s} {fmt(r['cpu_s']):>9s} {fmt(r['idle_lower_bound_s']):>9s}  {quote or '-':22s} "
            f"{load:>11s}  {r['rc']}",
            flush=True,
        )
        if r["rc"] != 0:
            print("    " + r.get("output_tail", "").replace("\n", "\n    "))
    if a.json:
        doc = {"date": now, "cores": cores, "cpu": cpu_name, "results": results}
        Path(a.json).write_text(json.dumps(doc, indent=1) + "\n")
    return 0 if all(r["rc"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
