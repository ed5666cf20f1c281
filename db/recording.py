"""Recording what the CLI's long jobs did: an ingest run's CSV rows and per-file results, a predict run.

The commands stay thin: they hand their typed results (``core.competition``, ``core.ingest``,
``core.predict``) to these functions, which own the transactions.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType

import pandas as pd

from core.competition import CsvResult, LabelRow, MetadataRow
from core.ingest import FAILED, IngestResult
from core.rundir import RunDir
from db.engine import make_engine, make_session_factory
from db.migrate import ensure_schema
from db.predictions import replace_predictions, upsert_model_run
from db.vessels import ImportReport, import_labels, import_metadata, record_ingest_result

RESULTS_PER_TRANSACTION = 256


class IngestRecorder:
    """Records an ingest run in the database (created on first use), in short transactions.

    Use as a context manager: :meth:`import_csvs` before decoding, :meth:`record` for each
    per-file result (committed every ``RESULTS_PER_TRANSACTION`` results and on exit). A result
    is recorded only after the volume store committed the stack, so a crash never leaves the
    database claiming a stack the store lacks; a rerun records the skipped stacks again, which
    changes nothing.
    """

    def __init__(self, url: str) -> None:
        ensure_schema(url)
        self._engine = make_engine(url)
        self._factory = make_session_factory(self._engine)
        self._pending: list[IngestResult] = []

    def __enter__(self) -> IngestRecorder:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        try:
            self.flush()
        finally:
            self._engine.dispose()

    def import_csvs(self, metadata: CsvResult[MetadataRow], labels: CsvResult[LabelRow] | None) -> list[str]:
        """Add the CSVs' vessels and crowd answers; returns one line per row not applied (conflicts, bad values).

        The split is ``train`` for a metadata file with crowd columns (``train_metadata.csv``),
        else ``test``. Labels apply to the stacks of this metadata file (the ingest command
        reports the others).
        """
        split = "train" if metadata.has_crowd else "test"
        with self._factory.begin() as session:
            reports = [import_metadata(session, rows=metadata.rows, source=str(metadata.path), split=split)]
            if labels is not None:
                listed = metadata.by_filename()
                reports.append(import_labels(session, rows=[row for row in labels.rows if row.filename in listed],
                                             source=str(labels.path)))
        return [str(issue) for report in reports for issue in report.issues]

    def record(self, result: IngestResult) -> None:
        """Queue one file's result; written with the next batch."""
        self._pending.append(result)
        if len(self._pending) >= RESULTS_PER_TRANSACTION:
            self.flush()

    def flush(self) -> None:
        """Write the queued results in one transaction."""
        if not self._pending:
            return
        with self._factory.begin() as session:
            for result in self._pending:
                record_ingest_result(session, filename=result.filename, ok=result.status != FAILED,
                                     error=result.error, depth=result.num_frames, box=result.roi,
                                     frame_size=result.frame_size)
        self._pending = []


def record_predictions(url: str, *, run_dir: Path, predictions: pd.DataFrame) -> ImportReport:
    """Store a predict run: the model run (described by RUN_DIR) and one row per scored stack.

    The run is named by RUN_DIR's resolved path; its arch and training configuration come from
    ``config.json``, its out-of-fold metrics and decision threshold from ``threshold.json``.
    Earlier rows of the same run for the same stacks are replaced in the same transaction.
    """
    ensure_schema(url)
    layout = RunDir(run_dir)
    config = _read_json(layout.config)
    threshold = _read_json(layout.threshold)
    engine = make_engine(url)
    try:
        with make_session_factory(engine).begin() as session:
            run = upsert_model_run(session, name=str(Path(run_dir).resolve()), arch=config.get("arch"),
                                   params=config, metrics=threshold.get("oof", {}),
                                   threshold=threshold.get("threshold", predictions.attrs.get("threshold")),
                                   checkpoint_path=str(Path(run_dir).resolve()))
            if "role" in predictions:  # core.predict's roles: only "new" stacks lack a reference answer
                predictions = predictions.assign(out_of_fold=predictions["role"] != "new")
            return replace_predictions(session, model_run_id=run.id, predictions=predictions, source=str(run_dir))
    finally:
        engine.dispose()


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}

