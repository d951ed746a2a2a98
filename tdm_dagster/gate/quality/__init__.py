"""Content quality suites for a batch of chat examples (plain Python, no Dagster).

Light to import: Great Expectations and transformers load on first use, so importing
``tdm_dagster.definitions`` stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tdm_dagster.gate.quality.results import SUITE_NAMES, SuiteResult
from tdm_dagster.config.quality import QualitySettings
from tdm_dagster.records.issues import RecordIssue

if TYPE_CHECKING:
    import pandas as pd

    from tdm_dagster.gate.quality.tokens import TokenCounter

__all__ = ["QualitySettings", "RecordIssue", "SUITE_NAMES", "SuiteResult", "TokenCounter", "build_report", "quality_features", "run_quality"]

_counters: dict[str | None, "TokenCounter"] = {}


def __getattr__(name: str) -> Any:
    """``TokenCounter`` loads numpy; import it only when asked for."""
    if name == "TokenCounter":
        from tdm_dagster.gate.quality.tokens import TokenCounter

        return TokenCounter
    raise AttributeError(name)


def run_quality(
    conversations: Sequence[Any],
    settings: QualitySettings,
    names: Sequence[str] = SUITE_NAMES,
    counter: TokenCounter | None = None,
    first_of: Sequence[int] | None = None,
) -> dict[str, SuiteResult]:
    """Run the named suites on ``conversations`` (lists of messages, or records with ``messages``).

    Without ``counter`` the tokenizer of ``settings.tokenizer_path`` is loaded once per process.
    ``first_of``: see :func:`tdm_dagster.gate.quality.features.compute_features`.
    """
    from tdm_dagster.gate.quality.suites import run_suites

    return run_suites(quality_features(conversations, settings, names, counter, first_of), settings, names)


def quality_features(
    conversations: Sequence[Any],
    settings: QualitySettings,
    names: Sequence[str] = SUITE_NAMES,
    counter: TokenCounter | None = None,
    first_of: Sequence[int] | None = None,
) -> pd.DataFrame:
    """What the named suites validate of ``conversations``, one row each
    (:func:`~tdm_dagster.gate.quality.features.compute_features`): a batch judged in
    chunks keeps these rows and runs the suites once over all of them."""
    from tdm_dagster.gate.quality.features import compute_features
    from tdm_dagster.gate.quality.tokens import TokenCounter

    if counter is None and "length" in names:
        counter = _counters.setdefault(settings.tokenizer_path, TokenCounter(settings.tokenizer_path))
    return compute_features(conversations, settings, counter, names, first_of)


def build_report(results: dict[str, SuiteResult]) -> dict[str, Any]:
    """The batch's quality report: one pass/fail per suite, details, and a recommendation."""
    failed = [name for name, result in results.items() if not result.passed]
    return {
        "total_checks": len(results),
        "passed_checks": len(results) - len(failed),
        "failed_checks": len(failed),
        "overall_pass": bool(results) and not failed,
        "recommendation": "approve" if results and not failed else f"reject: failed {', '.join(failed) or 'no checks ran'}",
        "results": {name: {"passed": result.passed, "details": result.details} for name, result in results.items()},
    }
