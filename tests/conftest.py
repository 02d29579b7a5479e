from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from dolphin.core.paths import repo_root, sample_data_dir, shared_data_dir

settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=60)
settings.load_profile("ci")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Real market data from ../shared/data (fails, never skips, when absent)."""
    return shared_data_dir()


@pytest.fixture(scope="session")
def sample_data() -> Path:
    return sample_data_dir()


@pytest.fixture(scope="session")
def root() -> Path:
    return repo_root()
