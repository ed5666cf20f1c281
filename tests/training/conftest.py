"""Toy stacks in a store, shared by the training tests (defined in tests/training/toy.py)."""

from tests.training.toy import toy_data  # noqa: F401 - a fixture
