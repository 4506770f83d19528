import os

import pytest
from hypothesis import HealthCheck, settings

# CI: derandomized (the same examples every run) and no deadline (a loaded 2-core box is slow).
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=200,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=100)
# `make test-fast`: the inner loop; fewer examples per property (CI and `make test` keep 200 / 100).
settings.register_profile("fast", deadline=None, max_examples=20, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


# Markers for the fast inner loop (`make test-fast` = -m "not slow and not torch"); CI runs everything.
# `torch`: a test in a tests/test_torch_*.py file, in a module that imports torch at the top, or using a torch fixture.
# `slow`: the files below run whole pipelines (verify, figures, bench, an install, the README's commands);
# single slow tests elsewhere carry an explicit @pytest.mark.slow.
TORCH_FIXTURES = {"torch_one_thread"}
SLOW_FILES = {
    "test_verify.py",
    "test_verify_mutants.py",
    "test_figures.py",
    "test_bench.py",
    "test_cli.py",
    "test_readme.py",
}
# Single slow tests in otherwise fast files (file::function, parametrizations included): 10^7 entries, and
# hypothesis searches (`find`) that run until they succeed, whatever the profile's max_examples.
SLOW_TESTS = {
    "test_projections.py::test_ten_million_entries_ternary_and_binary",
    "test_heuristics.py::test_hypothesis_finds_an_input_where_lloyd_is_strictly_worse",
    "test_heuristics.py::test_hypothesis_finds_an_input_where_twn_is_strictly_worse",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        name = item.path.name
        module = getattr(item, "module", None)
        if (
            name.startswith("test_torch_")
            or TORCH_FIXTURES & set(getattr(item, "fixturenames", ()))
            or (module is not None and "torch" in vars(module))
        ):
            item.add_marker(pytest.mark.torch)
        if name in SLOW_FILES or f"{name}::{item.originalname}" in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="module")
def torch_one_thread():
    """One intra-op thread for the torch tests: tiny tensors gain nothing from more, and a shared CI box thrashes."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
