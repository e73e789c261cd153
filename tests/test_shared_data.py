"""Reference data are found in one place (``tests/conftest.py``): ``VBTJAX_SHARED``, else ``../shared`` beside the
repository. A missing file skips a test on a developer's machine and fails it in CI (``CI=true`` or ``CI=1``), so that
a CI run without its reference data cannot pass. No source file names a machine's absolute path."""

import re
from pathlib import Path

import pytest
from conftest import in_ci, require, shared_path, shared_root

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("ci", ["true", "TRUE", "1", " true "])
def test_missing_reference_fails_under_ci(monkeypatch, tmp_path, ci):
    monkeypatch.setenv("VBTJAX_SHARED", str(tmp_path / "nowhere"))
    monkeypatch.setenv("CI", ci)
    assert in_ci()
    with pytest.raises(pytest.fail.Exception, match=r"nowhere.*reference.*x\.npz.*VBTJAX_SHARED.*CI=true"):
        shared_path("reference", "x.npz")
    with pytest.raises(pytest.fail.Exception, match="make_golden"):
        require(tmp_path / "golden.npz", "run tests/golden/make_golden.py")


@pytest.mark.parametrize("ci", [None, "", "false", "0", "no"])
def test_missing_reference_skips_outside_ci(monkeypatch, tmp_path, ci):
    monkeypatch.setenv("VBTJAX_SHARED", str(tmp_path / "nowhere"))
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    assert not in_ci()
    with pytest.raises(pytest.skip.Exception, match=r"nowhere.*x\.npz"):
        shared_path("reference", "x.npz")


def test_present_reference_is_returned_in_and_out_of_ci(monkeypatch, tmp_path):
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "x.npz").write_bytes(b"")
    monkeypatch.setenv("VBTJAX_SHARED", str(tmp_path))
    for ci in ("true", "false"):
        monkeypatch.setenv("CI", ci)
        assert shared_root() == tmp_path
        assert shared_path("reference", "x.npz") == tmp_path / "reference" / "x.npz"


def test_default_shared_folder_is_beside_the_repository(monkeypatch):
    monkeypatch.delenv("VBTJAX_SHARED", raising=False)
    assert shared_root() == ROOT.parent / "shared"


def test_no_absolute_machine_path_in_the_sources():
    """No ``"/work/..."``, ``"/home/..."`` or ``"/Users/..."`` string literal in the package, tests, examples or
    benchmark scripts: data are found through ``VBTJAX_SHARED`` or paths relative to the repository."""
    pattern = re.compile(r"""["'](/work|/home|/Users)/""")
    files = [p for d in ("vbtjax", "tests", "examples", "benchmarks") for p in (ROOT / d).rglob("*.py")]
    assert len(files) > 50
    hits = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in files
        if p != Path(__file__).resolve()
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not hits, hits
