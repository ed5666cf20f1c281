"""``stalltriage synth OUT_DIR``: write a synthetic data set in the Clog Loss competition format."""

from __future__ import annotations

import argparse
from pathlib import Path

from triage_app.settings import add_common_options, count, positive_int, resolve, share


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``synth`` sub-command."""
    parser = subparsers.add_parser(
        "synth", help="write synthetic stacks and competition-format CSVs",
        description="""Write synthetic two-photon stacks (H.264 mp4) and train/test metadata and label CSVs in the
                    Clog Loss competition format.""")
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="output directory")
    parser.add_argument("--n-train", type=count, default=200, help="training stacks (default 200)")
    parser.add_argument("--n-test", type=count, default=50, help="test stacks (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="data set seed (default 0)")
    parser.add_argument("--workers", type=positive_int, default=None, help="processes (default: all cores)")
    parser.add_argument("--stall-rate", type=share, default=0.3,
                        help="fraction of stalled training stacks (default 0.3, like the competition's micro subset)")
    parser.add_argument("--test-stall-rate", type=share, default=None,
                        help="fraction of stalled test stacks (default: the --stall-rate)")
    parser.add_argument("--projects", type=positive_int, default=12,
                        help="projects the stacks are spread over, each with its own appearance (default 12)")
    parser.add_argument("--profile", default="realistic", choices=("realistic", "tiny"),
                        help="realistic (default: Stall Catchers-like sizes, hard cases in every tier) "
                             "or tiny (small, fast and mostly clear, for tests)")
    add_common_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Generate the data set and print a one-line summary; returns the exit code."""
    import time

    import pandas as pd

    from core.synth.generator import generate

    resolve(args)
    start = time.perf_counter()
    try:
        out = generate(args.out_dir, args.n_train, args.n_test, args.seed, stall_rate=args.stall_rate,
                       test_stall_rate=args.test_stall_rate, n_projects=args.projects, profile=args.profile,
                       workers=args.workers)
    except OSError as exc:
        print(f"error: cannot write to {args.out_dir}: {exc}")
        return 1
    elapsed = time.perf_counter() - start
    stalled = int(pd.read_csv(out / "train_labels.csv")["stalled"].sum())
    total = args.n_train + args.n_test
    print(f"wrote {args.n_train} train ({stalled} stalled) and {args.n_test} test stacks to {out} "
          f"in {elapsed:.1f} s ({total / max(elapsed, 1e-9):.1f} stacks/s)")
    return 0
