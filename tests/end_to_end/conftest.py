"""Every test here runs whole commands end to end (studies, trainings in child processes, the page
in a browser, the GPU): all are marked ``slow``, left out of the quick loop `pytest -m "not slow"`."""

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items):
    for item in items:
        if HERE in Path(item.fspath).parents:
            item.add_marker(pytest.mark.slow)
