from __future__ import annotations

import warnings
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture
def tracking_uri(tmp_path: Path) -> str:
    """A throw-away SQLite MLflow store, so tests never touch ./mlflow.db."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture(autouse=True)
def _quiet_avalanche():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
