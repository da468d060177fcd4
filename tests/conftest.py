from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


def require_shared() -> None:
    """Skip a test that reads ../shared when it is absent; CI sets NLBENCH_REQUIRE_SHARED=1 to fail instead."""
    if not (SHARED / "data" / "heart").is_dir():
        if os.environ.get("NLBENCH_REQUIRE_SHARED"):
            pytest.fail(f"{SHARED} is required here (NLBENCH_REQUIRE_SHARED is set) but absent")
        pytest.skip(f"{SHARED / 'data' / 'heart'} is absent")


@pytest.fixture
def tracking_uri(tmp_path: Path) -> str:
    """A throw-away SQLite MLflow store, so tests never touch ./mlflow.db."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture(autouse=True)
def _quiet_avalanche():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
