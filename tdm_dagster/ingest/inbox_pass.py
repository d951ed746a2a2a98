"""One ingest pass over an inbox scan: claim its settled files, refuse what cannot be
read, and run each new claim, each orphaned claim and each later part exactly once.

A batch whose run fails before its gate finished is tried ``MAX_ATTEMPTS`` times in all
(a run killed with its process counts), then moved to ``failed/``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from tdm_dagster.files.atomic import read_json
from tdm_dagster.home import TdmHome
from tdm_dagster.ingest.inbox import InboxScan
from tdm_dagster.ingest.inbox_claims import (
    BatchLock,
    attempts_made,
    claim,
    claim_never_completed,
    is_processed,
    record_attempt,
    try_lock_batch,
    unclaim,
    unprocessed_claims,
)
from tdm_dagster.ingest.inbox_failures import Failed, fail_batch, failed_outcome, refuse
from tdm_dagster.records.batches import BatchStore


MAX_ATTEMPTS = 2
"""Runs of one inbox batch (the first and one retry) before it is moved to ``failed/``."""


class Log(Protocol):
    def info(self, msg: str) -> None: ...
    def warning(self, msg: str) -> None: ...
    def error(self, msg: str) -> None: ...


def _whole_file_problem(home: TdmHome, batch_id: str) -> str | None:
    """The file problem of a batch that read no record at all (empty, wrong format)."""
    ingest = read_json(home.batch_dir(batch_id) / "ingest.json") or {}
    return ingest.get("file_problem") if ingest.get("input_records") == 0 else None


def _run_owned_batch(
    home: TdmHome, batch_id: str, run_batch: Callable[[str], tuple[bool, str]], log: Log
) -> tuple[dict[str, Any] | None, Failed | None]:
    """Run a batch whose lock this process holds, retrying a run that ends before its gate
    finished until ``MAX_ATTEMPTS`` runs (a killed process's run counts); returns its
    outcome, and what was moved to ``failed/``."""
    file_name = Path(BatchStore(home).load_plan(batch_id).source_file or batch_id).name
    verdict = "a run was killed before it finished"
    while attempts_made(home, batch_id) < MAX_ATTEMPTS:
        attempt = record_attempt(home, batch_id)
        queued, verdict = run_batch(batch_id)
        if is_processed(home, batch_id):
            problem = _whole_file_problem(home, batch_id)
            failed = fail_batch(home, batch_id, "inbox.unreadable_file", problem) if problem else None
            return {"file": file_name, "batch_id": batch_id, "queued": queued, "verdict": verdict}, failed
        log.warning(f"batch {batch_id} ({file_name}) failed before its gate finished (attempt {attempt} of {MAX_ATTEMPTS}): {verdict}")
    reason = f"its run failed {MAX_ATTEMPTS} times before the gate finished; last: {verdict}"
    return None, fail_batch(home, batch_id, "inbox.run_failed", reason)


def ingest_pass(
    home: TdmHome,
    scan: InboxScan,
    *,
    priority: str,
    run_batch: Callable[[str], tuple[bool, str]],
    log: Log,
    on_failed: Callable[[Failed], None],
) -> list[dict[str, Any]]:
    """Claim the settled files of ``scan``, move its refused entries to ``failed/``, and
    run each new claim, each orphaned claim and each later part exactly once across
    processes (``run_batch`` returns (queued, verdict)). One outcome per file or part."""
    outcomes: list[dict[str, Any]] = []
    failures: list[Failed] = []
    for item in scan.settling:
        log.warning(f"left {item.path.name!r} in the inbox: still being written (unchanged for {item.unchanged_sec:.0f}s)")
        outcomes.append({"file": item.path.name, "batch_id": None, "queued": False, "state": "settling",
                         "verdict": "still being written; left in the inbox for the next run"})  # fmt: skip
    for refused in scan.refused:
        try:
            failed = refuse(home, refused)
        except OSError as exc:
            log.error(f"could not move {refused.path.name!r} ({refused.reason}) to failed/: {exc}")
            continue
        if failed:
            failures.append(failed)
            outcomes.append(failed_outcome(failed))
    held: dict[str, BatchLock] = {}
    for ready in scan.ready:
        try:
            claimed = claim(home, ready.path, priority, ready.signature)
        except OSError as exc:
            log.error(f"could not claim {ready.path.name!r}: {exc}")
            continue
        if isinstance(claimed, Failed):
            failures.append(claimed)
            outcomes.append(failed_outcome(claimed))
        elif claimed:
            log.info(f"claimed {claimed.original_name!r} as batch {claimed.batch_id}")
            held[claimed.batch_id] = claimed.lock
    todo = [*held, *(batch_id for batch_id in unprocessed_claims(home) if batch_id not in held)]
    while todo:
        batch_id = todo.pop(0)
        lock = held.pop(batch_id, None) or try_lock_batch(home, batch_id)
        if lock is None:
            log.info(f"batch {batch_id} is being processed by another process: left to it")
            continue
        with lock:
            if is_processed(home, batch_id):
                continue
            if claim_never_completed(home, batch_id):
                log.warning(f"batch {batch_id}: its claimer died before moving the file, which stays in the inbox; dropped")
                unclaim(home, batch_id, lock)
                continue
            outcome, failed = _run_owned_batch(home, batch_id, run_batch, log)
        if failed:
            failures.append(failed)
        if outcome and failed:
            outcome.update(state="failed", verdict=f"{outcome['verdict']}; moved to {failed.folder}")
        if outcome or failed:
            outcomes.append(outcome or failed_outcome(failed))
        following = (read_json(home.batch_dir(batch_id) / "ingest.json") or {}).get("continues_in")
        if following and following not in todo:
            todo.append(following)
    for failed in failures:
        log.error(f"{failed.name!r} moved to {failed.folder}: {failed.reason}")
        on_failed(failed)
    return outcomes
