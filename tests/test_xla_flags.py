"""The XLA option vbtjax sets at import (vbtjax/_xla_flags.py): merged into XLA_FLAGS, effective, the same numbers up
to rounding (not promised bitwise: docs/reliability.md)."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from vbtjax._xla_flags import OPTION, THRESHOLD_BYTES, with_small_loop_option

ENTRY = f"{OPTION}={THRESHOLD_BYTES}"


@pytest.mark.parametrize(
    "flags, expected",
    [
        ("", f"--xla_backend_extra_options={ENTRY}"),
        (
            "--xla_force_host_platform_device_count=4",
            f"--xla_force_host_platform_device_count=4 --xla_backend_extra_options={ENTRY}",
        ),
        ("--a=1 --xla_backend_extra_options=k=2 --b", f"--a=1 --xla_backend_extra_options=k=2,{ENTRY} --b"),
        ("--xla_backend_extra_options=", f"--xla_backend_extra_options={ENTRY}"),
        (f"--xla_backend_extra_options={OPTION}=5", f"--xla_backend_extra_options={OPTION}=5"),  # the user's wins
    ],
)
def test_flag_is_merged_into_existing_flags(flags, expected):
    assert with_small_loop_option(flags) == expected


_CHILD = r"""
import json, sys
import numpy as np
import vbtjax as vbt
import jax
conn = vbt.datasets.tvb_connectome(76)
net = vbt.Network(
    model=vbt.models.MontbrioPazoRoxin(), connectome=conn, coupling=vbt.coupling.Linear(a=0.01), speed=3.0
)
f = jax.jit(lambda a: vbt.simulate(net, 200.0, 0.1, key=jax.random.key(0)).ys["raw"] * a)
hlo = f.lower(1.0).compile().as_text()
np.save(sys.argv[1], np.asarray(f(1.0)))
print(json.dumps({"small_calls": hlo.count("xla_cpu_small_call")}))
"""


def _child(tmp_path, name, **env):
    out = tmp_path / f"{name}.npy"
    environ = {**os.environ, **env}
    # without the option this process inherited, so that the child's own `import vbtjax` decides
    environ["XLA_FLAGS"] = re.sub(r"--xla_backend_extra_options=\S*", "", environ.get("XLA_FLAGS", "")).strip()
    res = subprocess.run([sys.executable, "-c", _CHILD, str(out)], env=environ, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return np.load(out), json.loads(res.stdout.strip().splitlines()[-1])


def test_small_loops_are_compiled_as_calls_with_the_same_numbers(tmp_path):
    y_on, info_on = _child(tmp_path, "on")
    y_off, info_off = _child(tmp_path, "off", VBTJAX_XLA_FLAGS="0")
    # the step loop became one native call (XLA's default 1 KiB limit already takes some tiny loop)
    assert info_on["small_calls"] > info_off["small_calls"], (info_on, info_off)
    # float32, 2 000 steps: equal up to rounding (this deterministic run was bitwise equal when measured, but another
    # compiled program may round differently, as noisy runs do: not a promise, docs/reliability.md)
    np.testing.assert_allclose(y_on, y_off, rtol=1e-4, atol=1e-5)
    assert np.isfinite(y_on).all() and np.ptp(y_on) > 0
