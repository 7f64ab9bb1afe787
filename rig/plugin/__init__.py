"""The pieces of the pytest plugin (rig.pytest_plugin): the run's request as the plugin reads it, the signal
protocol, how a worker makes its peers, the end-of-run writing."""
