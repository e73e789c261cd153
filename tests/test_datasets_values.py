"""tvb-data's connectomes as vbtjax loads them (``vbt.datasets.tvb_connectome``) equal the files in tvb-data's zips,
read here with ``zipfile``, ``bz2`` and ``numpy.loadtxt`` only: weights, tract lengths (mm), centres (mm), labels."""

import bz2
import importlib.resources
import io
import zipfile

import numpy as np
import pytest

import vbtjax as vbt


def _read_zip(n):
    """``{name: text}`` of ``connectivity_{n}.zip``, member names without folders or a ``.bz2`` suffix."""
    resource = importlib.resources.files("tvb_data") / "connectivity" / f"connectivity_{n}.zip"
    out = {}
    with importlib.resources.as_file(resource) as path, zipfile.ZipFile(path) as zf:
        for member in zf.namelist():
            data = zf.read(member)
            name = member.rsplit("/", 1)[-1]
            if name.endswith(".bz2"):
                data, name = bz2.decompress(data), name[: -len(".bz2")]
            out[name] = data.decode("utf-8")
    return out


def _centres(text):
    rows = [line.split() for line in text.splitlines() if line.strip()]
    return [r[0] for r in rows], np.array([[float(v) for v in r[1:4]] for r in rows])


@pytest.mark.parametrize("n", [66, 68, 76, 96, 192])
def test_tvb_connectome_equals_the_zip_files(n):
    files = _read_zip(n)
    weights = np.loadtxt(io.StringIO(files["weights.txt"]))
    lengths = np.loadtxt(io.StringIO(files["tract_lengths.txt"]))
    labels, centres = _centres(files["centres.txt"])
    assert weights.shape == lengths.shape == (n, n) and len(labels) == n
    conn = vbt.datasets.tvb_connectome(n)
    np.testing.assert_array_equal(np.asarray(conn.weights), weights)  # as stored: not normalised, not transposed
    np.testing.assert_array_equal(np.asarray(conn.lengths), lengths)
    np.testing.assert_array_equal(np.asarray(conn.centres), centres)
    assert tuple(conn.labels) == tuple(labels)
    # the weights are not symmetric (but connectivity_68's), so the equality above also rules out a transpose
    assert np.array_equal(weights, weights.T) == (n == 68)
