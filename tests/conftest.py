"""Shared fixtures: a small synthetic data set and a real PostgreSQL server."""

pytest_plugins = ["tests.fixtures.synth", "tests.fixtures.postgres"]
