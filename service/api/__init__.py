"""The driftloop HTTP API (``driftloop serve``): the app, its routes by group, Prometheus metrics."""
