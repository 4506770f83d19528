import os

import pytest
from hypothesis import HealthCheck, settings

# CI: derandomized (the same examples every run) and no deadline (a loaded 2-core box is slow).
settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=200,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=100)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(scope="module")
def torch_one_thread():
    """One intra-op thread for the torch tests: tiny tensors gain nothing from more, and a shared CI box thrashes."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
