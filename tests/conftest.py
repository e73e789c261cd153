import os
import sys
from pathlib import Path

import jax
import pytest

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(Path(__file__).parent))

SHARED = Path(os.environ.get("VBTJAX_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.exists():
        pytest.skip(f"shared data not found at {SHARED} (set VBTJAX_SHARED)")
    return SHARED
