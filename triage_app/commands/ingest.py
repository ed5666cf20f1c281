"""``stalltriage ingest VIDEO_DIR --metadata CSV``: crop every stack into the volume store."""

from __future__ import annotations

import argparse
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from triage_app.settings import add_common_options, existing_dir, existing_file, positive_int, resolve

if TYPE_CHECKING:
    from core.labels.competition import CsvResult, LabelRow, MetadataRow
    from core.video.ingest import IngestResult, Pairing


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``ingest`` sub-command."""
    parser = subparsers.add_parser(
        "ingest", help="crop stacks (mp4) into the volume store",
        description="""Decode every stack of VIDEO_DIR listed in the metadata CSV, crop the region inside the orange
                    outline and store it in the LMDB volume store. Stacks already stored are skipped, so a rerun
                    resumes an interrupted ingest.""")
    parser.add_argument("video_dir", type=existing_dir, metavar="VIDEO_DIR", help="directory holding the .mp4 stacks")
    parser.add_argument("--metadata", type=existing_file, required=True, metavar="CSV",
                        help="train_metadata.csv or test_metadata.csv (competition format)")
    parser.add_argument("--labels", type=existing_file, default=None, metavar="CSV", help="train_labels.csv (optional)")
    parser.add_argument("--workers", type=positive_int, default=None, help="decoding processes (default: all cores)")
    parser.add_argument("--batch-size", type=positive_int, default=32, metavar="N",
                        help="stacks per store transaction (default 32): larger is faster, smaller loses "
                             "less work to a crash")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_common_options(parser)
    parser.set_defaults(func=run)


@dataclass
class Inputs:
    """Everything read before decoding: CSV rows, the file pairing, and the problems found."""

    metadata: CsvResult[MetadataRow]
    labels: CsvResult[LabelRow] | None
    pairing: Pairing
    problems: list[str] = field(default_factory=list)


def read_inputs(video_dir: Path, metadata_csv: Path, labels_csv: Path | None) -> Inputs:
    """Read the CSVs and pair files with rows; each problem becomes one line in ``problems``.

    Raises ``CsvError`` for an unusable CSV (the parser already checked that the folder and files exist).
    """
    from core.labels.competition import read_labels, read_metadata
    from core.video.ingest import find_stacks, pair_with_metadata

    metadata = read_metadata(metadata_csv)
    labels = read_labels(labels_csv) if labels_csv else None
    pairing = pair_with_metadata(find_stacks(video_dir), (row.filename for row in metadata.rows))
    problems = [str(issue) for issue in metadata.issues]
    problems += [f"{video_dir / name}: listed in {metadata_csv} but no such file" for name in pairing.no_file]
    problems += [f"{path}: no row in {metadata_csv}; not ingested" for path in pairing.no_row]
    if labels is not None:
        problems += [str(issue) for issue in labels.issues]
        listed = metadata.by_filename()
        problems += [f"{row.filename}: in {labels_csv} but not in {metadata_csv}"
                     for row in labels.rows if row.filename not in listed]
    return Inputs(metadata, labels, pairing, problems)


class TraceLog:
    """The tracebacks of unexpected per-stack failures, in a file created at the first one.

    The console gets one line per failed stack; a traceback (a bug, not a bad file) would bury
    the other lines, so it goes to ``path`` for the bug report.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def keep(self, result: IngestResult) -> str:
        """Append ``result``'s traceback; the note that says where it is, for the console line."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as log:
                log.write(f"{result.error}\n{result.trace}\n")
        except OSError as err:
            return f" (traceback not kept: {err})"
        return f" (traceback in {self.path})"


def trace_log_path(data_dir: Path) -> Path:
    """``DATA_DIR/logs/ingest-YYYYMMDD-HHMMSS.log``: one file per ingest run."""
    return data_dir / "logs" / f"ingest-{time.strftime('%Y%m%d-%H%M%S')}.log"


def handle_results(results: Iterable[IngestResult], record: Callable[[IngestResult], None],
                   traces: TraceLog, counts: Counter) -> None:
    """The one place every per-file result passes through: print failures, count statuses, ``record`` it.

    A result arrives only after its stack is committed to the store, so recording it (e.g. in
    the database) here never records a stack a crash could still lose. A failure is one line;
    an unexpected one's traceback goes to ``traces``. ``counts`` counts the statuses, up to an
    error that stops the run.
    """
    for result in results:
        counts[result.status] += 1
        record(result)
        if result.error:
            print(result.error + (traces.keep(result) if result.trace else ""), flush=True)


def missing_folders(path: Path) -> list[Path]:
    """``path`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def remove_folders(folders: list[Path]) -> None:
    """Remove what a run created at ``folders`` (:func:`missing_folders` taken before it): the first
    with its contents, the others (parents) only while empty."""
    if folders:
        shutil.rmtree(folders[0], ignore_errors=True)
    for folder in folders[1:]:
        try:
            folder.rmdir()
        except OSError:
            return


def raising(error: Exception) -> Iterator[IngestResult]:
    """An iterator that raises ``error`` when read."""
    raise error
    yield  # a generator: nothing is raised before the first read


def run(args: argparse.Namespace) -> int:
    """Ingest VIDEO_DIR; print one line per problem and a summary; returns the exit code."""
    from core.video.workers import start_worker_server

    if args.workers != 1:
        start_worker_server()  # it starts up while this process imports and reads the CSVs
    from core.labels.competition import CsvError
    from core.video.ingest import FAILED, INGESTED, SKIPPED, started_ingest
    from core.video.store import StoreError

    settings = resolve(args)
    try:
        inputs = read_inputs(args.video_dir, args.metadata, args.labels)
    except CsvError as err:
        print(f"error: {err}")
        return 2
    new_folders = missing_folders(settings.store_path)
    with ExitStack() as stack:
        # Decoding starts now and overlaps the database set-up (imports, schema, CSV import: over a
        # second, in series before the first stack otherwise); results are read, stored and
        # recorded only after it, in the same order as ever.
        results: Iterator[IngestResult]
        try:
            results = stack.enter_context(started_ingest(
                inputs.pairing.paths, settings.store_path, workers=args.workers, batch_size=args.batch_size,
                progress=False if args.no_progress else None))
        except StoreError as err:
            results = raising(err)  # reported where it always was: after the database set-up
        # The database side (SQLAlchemy, Alembic: about half a CPU-second) is imported only now, so the
        # workers start that much sooner.
        from sqlalchemy.exc import SQLAlchemyError

        from db.migrate import SchemaError
        from db.recording import IngestRecorder
        from triage_app.database import command_sessions

        try:
            recorder = stack.enter_context(IngestRecorder(stack.enter_context(
                command_sessions(settings.db_url, create=True))))
        except (SchemaError, RuntimeError, SQLAlchemyError) as err:
            stack.close()
            remove_folders(new_folders)  # no store left behind by a run that stored nothing
            print(f"error: {err}" if isinstance(err, SchemaError)  # names the database itself
                  else f"error: database {settings.db_url}: {err}")
            return 2
        inputs.problems += recorder.import_csvs(inputs.metadata, inputs.labels)
        for line in inputs.problems:
            print(line, flush=True)
        counts: Counter = Counter()
        try:
            handle_results(results, lambda result: recorder.record(
                filename=result.filename, ok=result.status != FAILED, error=result.error, depth=result.num_frames,
                box=result.roi, frame_size=result.frame_size), TraceLog(trace_log_path(settings.data_dir)), counts)
        except StoreError as err:
            print(f"error: {err}")
            print(f"stopped after storing {counts[INGESTED]} stack(s) (kept and recorded); "
                  "a rerun resumes with the others")
            return 1
    print(f"ingested {counts[INGESTED]}, already stored {counts[SKIPPED]}, failed {counts[FAILED]}"
          f"{f', {len(inputs.problems)} input problem(s)' if inputs.problems else ''} "
          f"(store: {settings.store_path})")
    return 1 if counts[FAILED] or inputs.problems else 0
