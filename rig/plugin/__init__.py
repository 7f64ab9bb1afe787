"""The pieces of the pytest plugin (rig.pytest_plugin): the signal protocol, the end-of-run writing."""
