"""Recording what the CLI's long jobs did: an ingest run's CSV rows and per-file results, a predict run.

The commands stay thin: they open the database (one engine per command), read their inputs
(CSVs, the run directory) and hand typed results to these functions, which own the transactions.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from core.labels.competition import CsvResult, LabelRow, MetadataRow
from db.models import ModelRun
from db.vessels import ImportReport, IngestResultRow, import_metadata, ingest_result_row, record_ingest_results

if TYPE_CHECKING:
    import pandas as pd

    from core.policy.label_shift import ShareEstimate

# The predict side (db.predictions: pandas; core.policy.label_shift: scikit-learn and scipy, about 3
# CPU-seconds to import together) is imported inside its functions, so that the ingest command,
# which only needs IngestRecorder, does not pay for it.

RESULTS_PER_TRANSACTION = 1000
MIN_NEW_STACKS = 50
"""Fewest new stacks whose stall share is estimated; with fewer the out-of-fold threshold stays."""
log = logging.getLogger(__name__)


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
        self._pending: list[IngestResultRow] = []

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
        listed = metadata.by_filename()
        with self._factory.begin() as session:
            report = import_metadata(session, rows=metadata.rows, source=str(metadata.path), split=split,
                                     labels=[] if labels is None else [row for row in labels.rows
                                                                       if row.filename in listed],
                                     labels_source=None if labels is None else str(labels.path))
        return [str(issue) for issue in report.issues]

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
        The frame ``core.model.predict`` returns; its ``attrs["threshold"]`` stands in for a missing
        ``threshold.json``.
    source
        Named in issues (the run directory as given).

    Earlier rows of the same run for the same stacks are replaced.
    """
    from db.predictions import replace_predictions, upsert_model_run

    run = upsert_model_run(session, name=name, arch=config.get("arch"), params=config,
                           metrics=threshold.get("oof", {}),
                           threshold=threshold.get("threshold", predictions.attrs.get("threshold")),
                           checkpoint_path=name)
    return replace_predictions(session, model_run_id=run.id, predictions=predictions, source=source)


@dataclass(frozen=True)
class NewStacksThreshold:
    """The stall share estimated for a run's new stacks and the threshold set for it.

    ``crowd_share`` is the crowd's stall share among the new stacks that have a crowd answer
    (``n_crowd`` of them; None when none has).
    """

    estimate: ShareEstimate
    threshold: float
    oof_threshold: float
    crowd_share: float | None
    n_crowd: int

    def as_metrics(self) -> dict[str, Any]:
        """The ``metrics["new_stacks"]`` entry of the model run."""
        estimate = asdict(self.estimate)
        return {"share": estimate["share"], "low": estimate["low"], "high": estimate["high"],
                "reference_share": estimate["reference_share"], "n": estimate["n_new"],
                "method": estimate["method"], "threshold": self.threshold,
                "crowd_share": self.crowd_share, "n_crowd": self.n_crowd}


def set_threshold_for_new_stacks(session: Session, *, model_run_id: int, reference: pd.DataFrame,
                                 oof_threshold: float, confidence: float = 0.95) -> NewStacksThreshold | None:
    """Re-choose a run's single threshold for the stall share of the stacks it decides (label shift).

    The out-of-fold threshold maximises MCC at the labelled set's stall share, which labs enrich
    (≈ 20 %); the stacks being decided have fewer stalls. Their share is estimated from their
    scores (:func:`core.policy.label_shift.estimate_stall_share`) and ``ModelRun.threshold`` becomes the
    MCC-optimal threshold at that share; ``metrics`` keeps ``oof_threshold`` and the estimate
    under ``new_stacks``.

    Parameters
    ----------
    reference
        The run's out-of-fold predictions (columns ``label`` and ``probability``), as read by the
        command from the run directory.
    oof_threshold
        The threshold chosen on ``reference`` at its own share (kept in ``metrics``).

    Returns None (and changes nothing) when the run scored fewer than :data:`MIN_NEW_STACKS`
    stacks it did not train on (a share from a handful of scores is noise), or the reference
    lacks a class.
    """
    from core.policy.label_shift import estimate_stall_share, threshold_for_share
    from db.predictions import predictions_frame

    frame = predictions_frame(session, model_run_id=model_run_id)
    new = frame[frame["role"] != "out_of_fold"]
    if reference["label"].nunique() < 2:
        return None
    if len(new) < MIN_NEW_STACKS:
        if len(new):
            log.info("%d new stacks: too few (< %d) to estimate their stall share; the out-of-fold "
                     "threshold stays", len(new), MIN_NEW_STACKS)
        return None
    estimate = estimate_stall_share(reference["probability"], reference["label"], new["probability"],
                                    confidence=confidence)
    crowd = new["label"].dropna().astype(int)
    result = NewStacksThreshold(estimate=estimate,
                                threshold=threshold_for_share(reference["probability"], reference["label"],
                                                              estimate.share),
                                oof_threshold=float(oof_threshold),
                                crowd_share=float(crowd.mean()) if len(crowd) else None, n_crowd=len(crowd))
    run = session.get(ModelRun, model_run_id)
    run.threshold = result.threshold
    run.metrics = {**run.metrics, "oof_threshold": result.oof_threshold, "new_stacks": result.as_metrics()}
    session.flush()
    return result
