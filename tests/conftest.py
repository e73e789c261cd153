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

SHARED = Path(os.environ.get("VBTJAX_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.exists():
        pytest.skip(f"shared data not found at {SHARED} (set VBTJAX_SHARED)")
    return SHARED


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
