import pytest

pytest_plugins = ["rig.pytest_plugin"]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``long`` (each runs a rig command for half a minute or more, much of it
    waiting on browsers or apt) go first. pytest-xdist hands items out in this order, so they run
    beside the short ones; one of them dealt out near the end would keep one worker busy for
    minutes while the other had nothing left. A stable sort: every other order is kept."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)
