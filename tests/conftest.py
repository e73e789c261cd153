import os
import sys
from pathlib import Path

# Most of this suite's time is XLA compiling programs that then run for milliseconds: without LLVM's expensive
# optimisation passes compilation is faster and the whole suite ~10 % shorter on 2 CPU cores (`vbtjax vep` on a
# synthetic patient: 118 s -> 104 s), the same numbers (no fast-math). Set before JAX's backend starts; an
# XLA_FLAGS of the user's that already names the option wins.
if "xla_llvm_disable_expensive_passes" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_llvm_disable_expensive_passes=true".strip()

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(Path(__file__).parent))


# ------------------------------------------------------------------------------------------ reference data
# The shared folder (HCP data, TVB reference runs) is found in one place: ``VBTJAX_SHARED``, else ``../shared``
# beside the repository. A test whose reference data are missing skips on a developer's machine, but fails in CI
# (``CI`` set to ``true`` or ``1``, as GitHub Actions and most CI services do): there a skip would pass silently.


def shared_root() -> Path:
    """The shared folder: ``$VBTJAX_SHARED`` if set, else ``../shared`` beside the repository."""
    env = os.environ.get("VBTJAX_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared"


SHARED = shared_root()


def in_ci() -> bool:
    """True when the environment variable ``CI`` is ``true`` or ``1`` (case-insensitive)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def require(path: Path | str, how: str) -> Path:
    """`path` if it exists; else skip the test, or fail it under CI (:func:`in_ci`). `how` says how to provide it."""
    path = Path(path)
    if not path.exists():
        msg = f"reference data missing: {path} ({how})"
        if in_ci():
            pytest.fail(f"{msg}; CI=true turns a missing reference into a failure", pytrace=False)
        pytest.skip(msg)
    return path


def shared_path(*parts: str) -> Path:
    """``SHARED / parts`` via :func:`require`: skips (fails in CI) when missing."""
    return require(shared_root().joinpath(*parts), "set VBTJAX_SHARED to the shared folder")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return shared_path()


# Files whose tests take minutes (measured with --durations), slowest first. The tests marked ``slow`` run first,
# then these files' tests, then the rest: pytest-xdist hands the next test to whichever worker is free, so starting
# the long ones first keeps one of them from running alone at the end while the other worker idles
# (longest-processing-time-first scheduling). The order inside a file is otherwise unchanged.
SLOW_FILES_FIRST = (
    "test_sbc.py",
    "test_vep.py",
    "test_examples.py",
    "test_sbi.py",
    "test_resting_state.py",
    "test_sbi_cli.py",
    "test_nuts.py",
    "test_recovery.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOW_FILES_FIRST)}

    def key(item):
        return (item.get_closest_marker("slow") is None, rank.get(item.path.name, len(rank)))

    items.sort(key=key)  # stable: the order is kept within each group
