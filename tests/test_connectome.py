import jax

jax.config.update("jax_enable_x64", True)

import bz2  # noqa: E402
import zipfile  # noqa: E402

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.io  # noqa: E402
from conftest import shared_path  # noqa: E402

from vbtjax.connectome import Connectome  # noqa: E402
from vbtjax.datasets import TVB_CONNECTOME_SIZES, tvb_connectome  # noqa: E402
from vbtjax.files import FileReadError  # noqa: E402

W = np.array([[0.0, 2.0, -1.0], [4.0, 1.0, 0.0], [0.5, 0.0, 0.0]])
L = np.array([[0.0, 10.0, 20.0], [10.0, 0.0, 30.0], [20.0, 30.0, 0.0]])
C = np.array([[1.0, 2.0, 3.0], [-4.0, 5.5, 6.0], [7.0, 8.0, -9.25]])
LABELS = ("lA", "rB", "lC")


def small() -> Connectome:
    return Connectome(weights=W, lengths=L, centres=C, labels=LABELS)


def assert_same(a: Connectome, b: Connectome):
    np.testing.assert_array_equal(a.weights, b.weights)
    np.testing.assert_array_equal(a.lengths, b.lengths)
    if a.centres is None or b.centres is None:
        assert a.centres is None and b.centres is None
    else:
        np.testing.assert_array_equal(a.centres, b.centres)
    assert a.labels == b.labels


def tvb_text(matrix: np.ndarray) -> str:
    return "\n".join(" ".join(repr(float(v)) for v in row) for row in matrix) + "\n"


def centres_text() -> str:
    return "".join(f"{lab} {x!r} {y!r} {z!r}\n" for lab, (x, y, z) in zip(LABELS, C.tolist(), strict=True))


# ---------------------------------------------------------------------- tvb-data


def test_tvb76_matches_reference():
    ref = np.load(shared_path("reference", "MontbrioPazoRoxin.npz"))
    conn = tvb_connectome(76)
    assert conn.weights.dtype == jnp.float64
    np.testing.assert_array_equal(np.asarray(conn.weights), ref["weights"])
    np.testing.assert_array_equal(np.asarray(conn.lengths), ref["tract_lengths"])


@pytest.mark.parametrize("n", TVB_CONNECTOME_SIZES)
def test_tvb_connectomes_load(n):
    conn = tvb_connectome(n)
    assert conn.n_regions == n
    assert conn.weights.shape == conn.lengths.shape == (n, n)
    assert conn.centres.shape == (n, 3)
    assert len(conn.labels) == n and len(set(conn.labels)) == n
    assert all(isinstance(s, str) and s for s in conn.labels)


def test_tvb_default_and_labels():
    conn = tvb_connectome()
    assert conn.n_regions == 76
    assert conn.labels[:3] == ("rA1", "rA2", "rAMYG")
    np.testing.assert_array_equal(conn.centres[0], [-9.885591, -47.084818, -3.139360])


def test_tvb_connectome_bad_n():
    with pytest.raises(ValueError, match=r"n=77.*66, 68, 76, 96, 192"):
        tvb_connectome(77)


def test_from_file_on_tvb_zip_equals_dataset():
    import importlib.resources

    path = importlib.resources.files("tvb_data") / "connectivity" / "connectivity_76.zip"
    with importlib.resources.as_file(path) as p:
        assert_same(Connectome.from_file(p), tvb_connectome(76))
        assert_same(Connectome.from_file(str(p)), tvb_connectome(76))


# ---------------------------------------------------------------------- file formats


def test_npz_round_trip_exact(tmp_path):
    conn = small()
    path = conn.save_npz(tmp_path / "c.npz")
    assert path == tmp_path / "c.npz"
    assert_same(Connectome.from_file(path), conn)
    bare = Connectome(weights=W, lengths=L)
    assert_same(Connectome.from_file(bare.save_npz(tmp_path / "bare.npz")), bare)
    tvb = tvb_connectome(68)
    assert_same(Connectome.from_file(tvb.save_npz(tmp_path / "tvb68.npz")), tvb)


def test_npz_tract_lengths_key(tmp_path):
    np.savez(tmp_path / "t.npz", weights=W, tract_lengths=L)
    assert_same(Connectome.from_file(tmp_path / "t.npz"), Connectome(weights=W, lengths=L))


def test_hcp_mat_pair():
    struct = shared_path("data", "hcp", "101309", "structural")
    shared_path("data", "hcp", "101309", "structural", "DTI_LEN.mat")
    conn = Connectome.from_file(struct / "DTI_CM.mat", lengths=struct / "DTI_LEN.mat")
    assert conn.n_regions == 94
    np.testing.assert_array_equal(conn.weights, scipy.io.loadmat(struct / "DTI_CM.mat")["sc"])
    np.testing.assert_array_equal(conn.lengths, scipy.io.loadmat(struct / "DTI_LEN.mat")["len"])
    assert conn.centres is None and conn.labels is None


@pytest.mark.parametrize("names", [("sc", "len"), ("weights", "tract_lengths"), ("SC", "lengths")])
def test_single_mat_with_both(tmp_path, names):
    scipy.io.savemat(tmp_path / "c.mat", {names[0]: W, names[1]: L})
    assert_same(Connectome.from_file(tmp_path / "c.mat"), Connectome(weights=W, lengths=L))


def test_mat_with_explicit_keys(tmp_path):
    scipy.io.savemat(tmp_path / "c.mat", {"A": W, "B": L})
    conn = Connectome.from_file(tmp_path / "c.mat", weights_key="A", lengths_key="B")
    assert_same(conn, Connectome(weights=W, lengths=L))


@pytest.mark.parametrize("delimiter,suffix", [(",", ".csv"), (" ", ".txt"), ("\t", ".tsv")])
def test_text_matrix_pairs(tmp_path, delimiter, suffix):
    np.savetxt(tmp_path / f"w{suffix}", W, delimiter=delimiter, fmt="%.17g")
    np.savetxt(tmp_path / f"l{suffix}", L, delimiter=delimiter, fmt="%.17g")
    conn = Connectome.from_file(tmp_path / f"w{suffix}", lengths=tmp_path / f"l{suffix}")
    assert_same(conn, Connectome(weights=W, lengths=L))


def test_mixed_pair_npy_and_csv(tmp_path):
    np.save(tmp_path / "w.npy", W)
    np.savetxt(tmp_path / "l.csv", L, delimiter=",", fmt="%.17g")
    assert_same(Connectome.from_file(tmp_path / "w.npy", lengths=tmp_path / "l.csv"), Connectome(weights=W, lengths=L))


def test_tvb_folder(tmp_path):
    (tmp_path / "weights.txt").write_text(tvb_text(W))
    (tmp_path / "tract_lengths.txt").write_text(tvb_text(L))
    (tmp_path / "centres.txt").write_text(centres_text())
    (tmp_path / "areas.txt").write_text("1\n2\n3\n")
    assert_same(Connectome.from_file(tmp_path), small())


def test_tvb_folder_without_centres(tmp_path):
    (tmp_path / "weights.txt").write_text(tvb_text(W))
    (tmp_path / "tract_lengths.txt").write_text(tvb_text(L))
    assert_same(Connectome.from_file(tmp_path), Connectome(weights=W, lengths=L))


def test_tvb_zip_bz2_members_in_subfolder(tmp_path):
    path = tmp_path / "conn.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("sub/weights.txt.bz2", bz2.compress(tvb_text(W).encode()))
        zf.writestr("sub/tract_lengths.txt.bz2", bz2.compress(tvb_text(L).encode()))
        zf.writestr("sub/centres.txt", centres_text())
        zf.writestr("sub/info.txt", 'weights_unit = "au"')
    assert_same(Connectome.from_file(path), small())


def test_lengths_argument_overrides(tmp_path):
    other = 2.0 * L
    np.savetxt(tmp_path / "l.csv", other, delimiter=",", fmt="%.17g")
    conn = Connectome.from_file(small().save_npz(tmp_path / "c.npz"), lengths=tmp_path / "l.csv")
    np.testing.assert_array_equal(conn.lengths, other)


# ---------------------------------------------------------------------- transforms


def test_normalised_modes():
    conn = small()
    np.testing.assert_allclose(conn.normalised().weights, W / 4.0)
    np.testing.assert_allclose(conn.normalised("max").weights, W / 4.0)
    np.testing.assert_allclose(conn.normalised("tract").weights, W / 4.0)
    np.testing.assert_allclose(conn.normalised("sum").weights, W / 8.5)
    # row sums 1, 5, 0.5 -> largest |row sum| is 5
    np.testing.assert_allclose(conn.normalised("region").weights, W / 5.0)
    # absolute row sums 3, 5, 0.5
    np.testing.assert_allclose(conn.normalised("rows").weights, W / np.array([[3.0], [5.0], [0.5]]))
    out = conn.normalised("rows")
    np.testing.assert_array_equal(out.lengths, L)
    np.testing.assert_array_equal(out.centres, C)
    assert out.labels == LABELS
    np.testing.assert_array_equal(conn.weights, W)  # the original is unchanged


def test_normalised_zero_matrix_and_row_stay():
    z = Connectome(weights=np.zeros((2, 2)), lengths=np.zeros((2, 2)))
    for mode in ("max", "sum", "region", "rows"):
        np.testing.assert_array_equal(z.normalised(mode).weights, 0.0)
    w = np.array([[0.0, 2.0], [0.0, 0.0]])
    np.testing.assert_array_equal(Connectome(weights=w, lengths=np.zeros((2, 2))).normalised("rows").weights, w / 2)


def test_normalised_bad_mode():
    with pytest.raises(ValueError, match="mode"):
        small().normalised("l2")


def test_without_self_connections():
    out = small().without_self_connections()
    expected = W.copy()
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_array_equal(out.weights, expected)
    np.testing.assert_array_equal(out.lengths, L)


def test_delays():
    np.testing.assert_allclose(small().delays(2.0), L / 2.0)
    for bad in (0.0, -3.0):
        with pytest.raises(ValueError, match="speed"):
            small().delays(bad)


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(weights=np.ones((3, 4)), lengths=np.ones((3, 4))), "weights.*square"),
        (dict(weights=np.ones(3), lengths=np.ones(3)), "weights.*square"),
        (dict(weights=np.ones((3, 3)), lengths=np.ones((2, 2))), r"lengths.*\(3, 3\)"),
        (dict(weights=W, lengths=L, centres=np.ones((3, 2))), r"centres.*\(3, 3\)"),
        (dict(weights=W, lengths=L, centres=np.ones((2, 3))), "centres"),
        (dict(weights=W, lengths=L, labels=("a", "b")), "labels.*3 labels"),
        (dict(weights=W, lengths=L, labels="abc"), "labels"),
        (dict(weights=np.where(np.eye(3) > 0, np.nan, W), lengths=L), "weights.*NaN"),
        (dict(weights=np.where(np.eye(3) > 0, np.inf, W), lengths=L), "weights.*inf"),
        (dict(weights=W, lengths=np.where(np.eye(3) > 0, np.nan, L)), "lengths.*NaN"),
        (dict(weights=W, lengths=np.where(np.eye(3) > 0, -np.inf, L)), "lengths.*inf"),
        (dict(weights=W, lengths=-L), "lengths.*negative"),
        (dict(weights=W, lengths=L, centres=np.full((3, 3), np.nan)), "centres.*NaN"),
        # issue 23: refused instead of silently cast, flattened or kept
        (dict(weights=W + 1j, lengths=L), "weights is complex"),
        (dict(weights=jnp.asarray(W) * 1j, lengths=L), "weights is complex"),
        (dict(weights=W, lengths=L.astype(np.complex64)), "lengths is complex"),
        (dict(weights=W, lengths=L, centres=np.zeros((3, 3), complex)), "centres is complex"),
        (dict(weights=np.full((3, 3), "1.0"), lengths=L), "weights is not numeric"),
        (dict(weights=np.full((3, 3), None), lengths=L), "weights contains NaN"),
        (dict(weights=np.full((3, 3), 10**400, dtype=object), lengths=L), "weights holds values that are not"),
        (dict(weights=[[0.0, 1.0, 2.0], [1.0, 0.0], [2.0]], lengths=L), "weights is not a rectangular array"),
        (dict(weights=None, lengths=L), "weights is None"),
        (dict(weights=W, lengths=L, labels=["a", "b", "a"]), r"labels 'a' occur more than once"),
        (dict(weights=W, lengths=L, labels=["a", None, "c"]), r"labels\[1\] is None"),
        (dict(weights=W, lengths=L, labels=[["a", "b", "c"]]), r"flat sequence.*shape \(1, 3\)"),
        (dict(weights=W, lengths=L, labels=3), "flat sequence.*got a int"),
    ],
)
def test_bad_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Connectome(**kwargs)


def test_duplicate_labels_named_and_resection_by_label_is_unambiguous():
    labels = ["a", "b", "a", "c", "b"]
    with pytest.raises(ValueError, match=r"labels 'a', 'b' occur more than once"):
        Connectome(weights=np.ones((5, 5)), lengths=np.ones((5, 5)), labels=labels)
    conn = Connectome(weights=np.ones((3, 3)), lengths=np.ones((3, 3)), labels=[b"x", np.str_("y"), "z"])
    assert conn.labels == ("x", "y", "z")
    np.testing.assert_array_equal(np.asarray(conn.resected("y").weights)[1], 0.0)


def test_negative_weights_allowed():
    assert Connectome(weights=-np.abs(W), lengths=L).n_regions == 3


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        Connectome.from_file(tmp_path / "nope.npz")
    np.savetxt(tmp_path / "w.csv", W, delimiter=",")
    with pytest.raises(FileNotFoundError, match="nol.csv"):
        Connectome.from_file(tmp_path / "w.csv", lengths=tmp_path / "nol.csv")


@pytest.mark.parametrize("name", ["bad.zip", "bad.npz", "bad.mat", "bad.npy"])
def test_unreadable_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\x00\x01 this is not a valid file \xff" * 10)
    np.savetxt(tmp_path / "l.csv", L, delimiter=",")
    with pytest.raises(FileReadError, match=rf"{name} is not a readable"):
        Connectome.from_file(path, **({"lengths": tmp_path / "l.csv"} if name.endswith("npy") else {}))


def test_unparseable_text_matrix(tmp_path):
    (tmp_path / "w.csv").write_text("a,b\n1,2\n")
    np.savetxt(tmp_path / "l.csv", L, delimiter=",")
    with pytest.raises(ValueError, match=r"w\.csv.*numeric matrix"):
        Connectome.from_file(tmp_path / "w.csv", lengths=tmp_path / "l.csv")


def test_mat_without_known_variables(tmp_path):
    scipy.io.savemat(tmp_path / "c.mat", {"foo": W, "bar": L})
    with pytest.raises(ValueError, match=r"c\.mat has no weights.*found: bar, foo"):
        Connectome.from_file(tmp_path / "c.mat")
    scipy.io.savemat(tmp_path / "w.mat", {"sc": W})
    with pytest.raises(ValueError, match=r"w\.mat has no lengths.*found: sc.*lengths=PATH"):
        Connectome.from_file(tmp_path / "w.mat")
    with pytest.raises(ValueError, match=r"no variable 'nope'.*found: sc"):
        Connectome.from_file(tmp_path / "w.mat", weights_key="nope")


def test_npz_without_lengths(tmp_path):
    np.savez(tmp_path / "c.npz", weights=W)
    with pytest.raises(ValueError, match=r"c\.npz has no lengths.*found: weights"):
        Connectome.from_file(tmp_path / "c.npz")


def test_matrix_file_needs_lengths(tmp_path):
    np.savetxt(tmp_path / "w.csv", W, delimiter=",")
    with pytest.raises(ValueError, match="lengths=PATH"):
        Connectome.from_file(tmp_path / "w.csv")


def test_tvb_folder_missing_weights(tmp_path):
    (tmp_path / "tract_lengths.txt").write_text(tvb_text(L))
    with pytest.raises(ValueError, match=r"no weights\.txt.*Found: tract_lengths\.txt"):
        Connectome.from_file(tmp_path)


def test_unknown_extension(tmp_path):
    (tmp_path / "c.h5").write_bytes(b"")
    with pytest.raises(ValueError, match=r"cannot tell the format of .*c\.h5"):
        Connectome.from_file(tmp_path / "c.h5")


# ---------------------------------------------------------------------- JAX transformations


def test_construct_under_jit():
    @jax.jit
    def build(w, ln):
        return Connectome(weights=w, lengths=ln).normalised("rows")

    conn = build(jnp.asarray(W), jnp.asarray(L))
    assert isinstance(conn, Connectome)
    np.testing.assert_allclose(conn.weights, small().normalised("rows").weights)


def test_construct_under_vmap():
    ws = jnp.stack([jnp.asarray(W), 2 * jnp.asarray(W)])
    out = jax.vmap(lambda w: Connectome(weights=w, lengths=L).normalised("max").weights)(ws)
    np.testing.assert_allclose(out, np.stack([W / 4.0, W / 4.0]))


def test_shape_checks_still_run_under_jit():
    with pytest.raises(ValueError, match="weights.*square"):
        jax.jit(lambda w: Connectome(weights=w, lengths=w).weights)(jnp.ones((2, 3)))


def test_grad_flows_to_weights():
    conn = small()

    def loss(c: Connectome):
        return jnp.sum(c.normalised("rows").weights ** 2) + jnp.sum(c.delays(3.0))

    grads = eqx.filter_grad(loss)(conn)
    # analytic gradient of sum_ij (W_ij / r_i)^2 with r_i = sum_k |W_ik|, where W_ij != 0 (|x| has a kink at 0)
    r = np.abs(W).sum(axis=1, keepdims=True)
    s = (W**2).sum(axis=1, keepdims=True)
    expected = 2 * W / r**2 - 2 * s / r**3 * np.sign(W)
    nz = W != 0
    np.testing.assert_allclose(np.asarray(grads.weights)[nz], expected[nz], rtol=1e-12)
    np.testing.assert_allclose(grads.lengths, np.full((3, 3), 1 / 3.0))

    g = jax.grad(lambda w: jnp.sum(Connectome(weights=w, lengths=L).normalised("max").weights))(jnp.asarray(W))
    assert np.all(np.isfinite(g)) and np.any(g != 0)


def test_subset_and_nearest():
    conn = tvb_connectome(76)
    keep = conn.nearest([12, 40], 10)
    c = np.asarray(conn.centres)
    d = np.min(np.linalg.norm(c[:, None] - c[[12, 40]][None], axis=-1), axis=1)
    assert keep.size == 10 and {12, 40} <= set(keep.tolist()) and d[keep].max() <= np.sort(d)[9]
    sub = conn.subset(keep)
    np.testing.assert_array_equal(sub.weights, np.asarray(conn.weights)[np.ix_(keep, keep)])
    np.testing.assert_array_equal(sub.lengths, np.asarray(conn.lengths)[np.ix_(keep, keep)])
    np.testing.assert_array_equal(sub.centres, c[keep])
    assert sub.labels == tuple(conn.labels[i] for i in keep)
    assert conn.subset([conn.labels[3], 1]).labels == (conn.labels[3], conn.labels[1])
    with pytest.raises(ValueError, match="distinct"):
        conn.subset([1, 1])
    with pytest.raises(ValueError, match="k must lie"):
        conn.nearest([1], 0)
