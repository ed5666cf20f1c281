"""What the tests and the benchmarks share, importable once the project is installed.

The benchmarks under ``bench/`` run as ``python -m bench.<name>`` and import nothing from
``tests/``; what both need lives here instead:

``testkit.app_data``
    A prepared app database (stacks, crowd answers, a model run with predictions, stored volumes,
    real mp4 videos, an admin and a reviewer) without training.
``testkit.run_dir``
    A finished run directory of small untrained members, for what needs an ensemble on disk.
``testkit.app_server``
    ``stalltriage app`` on a free port and the headless Chromium settings that drive it.
``testkit.postgres``
    A throwaway PostgreSQL 15 server (the tests' fixtures wrap it).

Nothing in the product imports this package.
"""
