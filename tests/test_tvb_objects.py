"""TVB objects in and out (``Connectome.from_tvb`` / ``to_tvb``): a TVB-shaped connectivity converts with its values,
orientation, centres and labels; unset or mis-shaped optional arrays are dropped; a non-connectivity is refused with
the fix; ``to_tvb`` without TVB says how to install it. With tvb-library installed (a separate venv, never a
dependency), the round trip through TVB's own ``Connectivity`` is checked too."""

import importlib.util
import types

import numpy as np
import pytest

import vbtjax as vbt

HAVE_TVB = importlib.util.find_spec("tvb") is not None


def _tvb_like(n=4, seed=0, **over):
    rng = np.random.default_rng(seed)
    attrs = dict(
        weights=rng.uniform(0, 1, (n, n)) * (1 - np.eye(n)),  # asymmetric: the orientation is checked
        tract_lengths=rng.uniform(5, 50, (n, n)),
        centres=rng.normal(size=(n, 3)) * 30,
        region_labels=np.array([f"reg{i}" for i in range(n)]),
        speed=np.array([3.0]),
    )
    attrs.update(over)
    return types.SimpleNamespace(**attrs)


def test_from_tvb_keeps_values_orientation_and_labels():
    src = _tvb_like()
    conn = vbt.Connectome.from_tvb(src)
    np.testing.assert_array_equal(np.asarray(conn.weights), src.weights)  # not transposed: TVB's W[i, j] is j -> i
    np.testing.assert_array_equal(np.asarray(conn.lengths), src.tract_lengths)
    np.testing.assert_array_equal(np.asarray(conn.centres), src.centres)
    assert conn.labels == ("reg0", "reg1", "reg2", "reg3")
    # the same as reading TVB's own file of the 76-region connectome
    ref = vbt.datasets.tvb_connectome(76)
    again = vbt.Connectome.from_tvb(
        types.SimpleNamespace(
            weights=np.asarray(ref.weights),
            tract_lengths=np.asarray(ref.lengths),
            centres=np.asarray(ref.centres),
            region_labels=np.array(ref.labels),
        )
    )
    assert again.labels == ref.labels
    np.testing.assert_array_equal(np.asarray(again.weights), np.asarray(ref.weights))


def test_from_tvb_drops_unset_optional_arrays_and_refuses_other_objects():
    conn = vbt.Connectome.from_tvb(_tvb_like(centres=np.zeros((0,)), region_labels=np.array([])))
    assert conn.centres is None and conn.labels is None
    conn = vbt.Connectome.from_tvb(_tvb_like(centres=np.zeros((3, 3))))  # wrong shape: not region centres
    assert conn.centres is None
    with pytest.raises(TypeError, match="tract_lengths.*Connectivity"):
        vbt.Connectome.from_tvb(types.SimpleNamespace(weights=np.eye(2)))
    with pytest.raises(ValueError, match="lengths"):
        vbt.Connectome.from_tvb(_tvb_like(tract_lengths=np.ones((3, 3))))  # the Connectome's own check


@pytest.mark.skipif(HAVE_TVB, reason="checks the message shown without TVB")
def test_to_tvb_without_tvb_says_how_to_install():
    with pytest.raises(ImportError, match="pip install tvb-library"):
        vbt.datasets.tvb_connectome(76).to_tvb()


@pytest.mark.skipif(not HAVE_TVB, reason="tvb-library is not installed (optional; never a dependency)")
def test_round_trip_through_tvb():
    from tvb.datatypes.connectivity import Connectivity

    tvb_conn = Connectivity.from_file()  # TVB's default: connectivity_76
    tvb_conn.configure()
    conn = vbt.Connectome.from_tvb(tvb_conn)
    ref = vbt.datasets.tvb_connectome(76)
    np.testing.assert_array_equal(np.asarray(conn.weights), np.asarray(ref.weights))
    np.testing.assert_array_equal(np.asarray(conn.lengths), np.asarray(ref.lengths))
    assert conn.labels == ref.labels
    back = conn.to_tvb(speed=4.0)
    assert isinstance(back, Connectivity) and float(back.speed[0]) == 4.0
    np.testing.assert_array_equal(back.weights, tvb_conn.weights)
    np.testing.assert_array_equal(back.tract_lengths, tvb_conn.tract_lengths)
    np.testing.assert_array_equal(back.centres, tvb_conn.centres)
    assert list(back.region_labels) == list(tvb_conn.region_labels)
    # TVB's delays from the round-tripped object equal vbtjax's
    back.set_idelays(0.1)
    np.testing.assert_array_equal(back.idelays, np.rint(np.asarray(conn.lengths) / 4.0 / 0.1).astype(int))
