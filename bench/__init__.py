"""Benchmarks: speed and quality measurements behind ``docs/benchmarks.md``.

Each module is a script run from the repository root as ``python -m bench.<name>`` (``--help``
lists its options), except ``synth_features``, the hand-made feature baseline of
``synth_check``. They import the product and ``testkit`` (what they share with the tests),
never ``tests``, and never edit the import path.
"""
