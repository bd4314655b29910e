"""Test set-up: torchvision must import beside the CPU-only torch wheel (docs/stack.md)."""

import os

import torch

from nasrepro._compat import ensure_torchvision

ensure_torchvision()
# Tiny test networks run faster on one thread, and parallel test workers do not fight.
torch.set_num_threads(1)

# The dataset files the tests write are FIXTURES, not the published ones: say so, as a user
# would have to (nasrepro/datafiles.py); records then carry "fixture": true.
os.environ.setdefault("NASREPRO_FIXTURE_DATA", "1")


import shutil  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def _mlflow_template(tmp_path_factory: pytest.TempPathFactory):
    """An empty MLflow SQLite store with its schema built once per session (the migrations
    cost seconds of CPU per store)."""
    from nasrepro.tracking import Tracker

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    Tracker(f"sqlite:///{path}")
    return path


@pytest.fixture
def mlflow_uri(tmp_path, _mlflow_template) -> str:
    """A fresh MLflow store for one test: a copy of the empty template."""
    store = tmp_path / "mlflow.db"
    shutil.copy(_mlflow_template, store)
    return f"sqlite:///{store}"
