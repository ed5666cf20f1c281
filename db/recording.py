"""Recording what the CLI's long jobs did: an ingest run's CSV rows and per-file results, a predict run.

The commands stay thin: they open the database (one engine per command), read their inputs
(CSVs, the run directory) and hand typed results to these functions, which own the transactions.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from core.competition import CsvResult, LabelRow, MetadataRow
from db.predictions import replace_predictions, upsert_model_run
from db.vessels import ImportReport, import_labels, import_metadata, ingest_result_row, record_ingest_results

RESULTS_PER_TRANSACTION = 1000


class IngestRecorder:
    """Records an ingest run in the database, in short transactions on the command's sessions.

    Use as a context manager: :meth:`import_csvs` before decoding, :meth:`record` for each
    per-file result (committed every ``RESULTS_PER_TRANSACTION`` results and on exit). A result
    is recorded only after the volume store committed the stack, so a crash never leaves the
    database claiming a stack the store lacks; a rerun records the skipped stacks again, which
    changes nothing.
    """

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory
        self._pending: list[dict[str, Any]] = []

    def __enter__(self) -> IngestRecorder:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.flush()

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

    def record(self, *, filename: str, ok: bool, error: str | None = None, depth: int | None = None,
               box: tuple[int, int, int, int] | None = None, frame_size: tuple[int, int] | None = None) -> None:
        """Queue one file's result (arguments as :func:`db.vessels.ingest_result_row`); written with the next batch."""
        self._pending.append(ingest_result_row(filename=filename, ok=ok, error=error, depth=depth, box=box,
                                               frame_size=frame_size))
        if len(self._pending) >= RESULTS_PER_TRANSACTION:
            self.flush()

    def flush(self) -> None:
        """Write the queued results in one transaction."""
        if not self._pending:
            return
        with self._factory.begin() as session:
            record_ingest_results(session, self._pending)
        self._pending = []


def record_predictions(session: Session, *, name: str, config: dict[str, Any], threshold: dict[str, Any],
                       predictions: pd.DataFrame, source: str) -> ImportReport:
    """Store a predict run in the session's transaction: the model run and one row per scored stack.

    Parameters
    ----------
    name
        The run's name: its run directory's resolved path (also stored as where the checkpoints are).
    config, threshold
        The run directory's ``config.json`` (arch and training configuration) and
        ``threshold.json`` (out-of-fold metrics under ``oof``, the decision threshold), as read by
        the command; empty when a file is missing.
    predictions
        The frame ``core.predict`` returns; its ``attrs["threshold"]`` stands in for a missing
        ``threshold.json``.
    source
        Named in issues (the run directory as given).

    Earlier rows of the same run for the same stacks are replaced.
    """
    run = upsert_model_run(session, name=name, arch=config.get("arch"), params=config,
                           metrics=threshold.get("oof", {}),
                           threshold=threshold.get("threshold", predictions.attrs.get("threshold")),
                           checkpoint_path=name)
    return replace_predictions(session, model_run_id=run.id, predictions=predictions, source=source)
