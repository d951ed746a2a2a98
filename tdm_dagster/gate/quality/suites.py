"""The five quality suites as Great Expectations suites, and their results in our terms.

GX does the validating (one ephemeral context per process, a pandas dataframe asset, one
``ValidationDefinition`` per suite); this module turns its results into per-record
``RecordIssue``s with stable codes and a JSON-safe summary per suite.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tdm_dagster.gate.margins import margin_issue
from tdm_dagster.gate.quality.heuristics import describe_issue
from tdm_dagster.gate.quality.results import SUITE_NAMES, SuiteResult
from tdm_dagster.config.quality import QualitySettings
from tdm_dagster.records.issues import RecordIssue

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

SAMPLES_PER_SUITE = 5
RESULT_FORMAT = {"result_format": "COMPLETE", "partial_unexpected_count": 0}


Describe = Callable[[pd.DataFrame, np.ndarray, QualitySettings], list[RecordIssue]]


@dataclass(frozen=True)
class _Rule:
    """One expectation; ``describe`` (per-record rules only) explains each failing record."""

    name: str
    expectation: Callable[[QualitySettings, pd.DataFrame], Expectation]
    describe: Describe | None = None

    @property
    def suite(self) -> str:
        return self.name.split(".", 1)[0]


def _format_issues(features: pd.DataFrame, rows: np.ndarray, _: QualitySettings) -> list[RecordIssue]:
    codes = features["format_code"].to_numpy()[rows]
    messages = features["format_error"].to_numpy()[rows]
    return [RecordIssue("format", c, m, m.split(":", 1)[0]) for c, m in zip(codes, messages)]


def _token_count_text(low: int, high: int, bound: str) -> str:
    return f"{low} tokens" if low == high else f"{bound} {high if bound == 'at most' else low} tokens"


def _token_bound_issues(code: str, bound: str, setting: str, side: str) -> Callable[..., list[RecordIssue]]:
    """Issue builder for a record outside one token bound: ``too_short`` (its token count is
    ``at most`` some count, below ``min_tokens``) or ``too_long`` (``at least``, above ``max_tokens``)."""

    def issues(features: pd.DataFrame, rows: np.ndarray, settings: QualitySettings) -> list[RecordIssue]:
        low, high = features["tokens_low"].to_numpy()[rows], features["tokens_high"].to_numpy()[rows]
        limit = getattr(settings, setting)
        return [
            RecordIssue("length", code, f"messages: {_token_count_text(lo, hi, bound)} is {side} {setting} {limit}", "messages")
            for lo, hi in zip(low.tolist(), high.tolist())
        ]

    return issues


_too_short_issues = _token_bound_issues("length.too_short", "at most", "min_tokens", "below")
_too_long_issues = _token_bound_issues("length.too_long", "at least", "max_tokens", "above")


def _duplicate_issues(features: pd.DataFrame, rows: np.ndarray, _: QualitySettings) -> list[RecordIssue]:
    first = features["duplicate_of"].to_numpy()[rows]
    return [
        RecordIssue("diversity", "diversity.duplicate_example", f"messages: exact duplicate of record {f}", "messages")
        for f in first.tolist()
    ]


def _balance_issues(features: pd.DataFrame, rows: np.ndarray, settings: QualitySettings) -> list[RecordIssue]:
    user, assistant = features["user_turns"].to_numpy()[rows], features["assistant_turns"].to_numpy()[rows]
    return [
        RecordIssue(
            "balance", "balance.turn_ratio",
            f"messages: {a} assistant to {u} user turns is outside 1 ± {settings.balance_tolerance}",
            "messages",
        )
        for u, a in zip(user.tolist(), assistant.tolist())
    ]  # fmt: skip


def _content_issues(features: pd.DataFrame, rows: np.ndarray, _: QualitySettings) -> list[RecordIssue]:
    codes = features["content_issue"].to_numpy()[rows]
    fields = features["content_issue_field"].to_numpy()[rows]
    return [RecordIssue("content", c, f"{f}: {describe_issue(c)}", f) for c, f in zip(codes, fields)]


def _rules() -> tuple[_Rule, ...]:
    """Every rule of every suite; built lazily because it needs the GX expectation classes."""
    import great_expectations.expectations as gxe

    def batch_turn_ratio(s: QualitySettings, features: pd.DataFrame) -> Expectation:
        # GX has no ratio-of-sums expectation: bound the assistant-turn sum by the user-turn sum.
        users = int(features["user_turns"].sum())
        return gxe.ExpectColumnSumToBeBetween(
            column="assistant_turns",
            min_value=(1 - s.balance_tolerance) * users,
            max_value=(1 + s.balance_tolerance) * users,
        )

    return (
        _Rule("format.record", lambda s, _: gxe.ExpectColumnValuesToBeNull(column="format_error", mostly=s.min_pass_rate), _format_issues),
        _Rule("length.too_short", lambda s, _: gxe.ExpectColumnValuesToBeBetween(column="tokens_high", min_value=s.min_tokens, mostly=s.min_pass_rate), _too_short_issues),
        _Rule("length.too_long", lambda s, _: gxe.ExpectColumnValuesToBeBetween(column="tokens_low", max_value=s.max_tokens, mostly=s.min_pass_rate), _too_long_issues),
        _Rule("diversity.duplicate_example", lambda s, _: gxe.ExpectColumnValuesToBeInSet(column="is_duplicate_example", value_set=[False], mostly=s.min_pass_rate), _duplicate_issues),
        _Rule("diversity.unique_responses", lambda s, _: gxe.ExpectColumnProportionOfUniqueValuesToBeBetween(column="response_hash", min_value=s.min_unique_response_ratio)),
        _Rule("balance.turn_ratio", lambda s, _: gxe.ExpectColumnValuesToBeBetween(column="turn_ratio", min_value=1 - s.balance_tolerance, max_value=1 + s.balance_tolerance, mostly=s.min_pass_rate), _balance_issues),
        _Rule("balance.batch_turn_ratio", batch_turn_ratio),
        _Rule("content.record", lambda s, _: gxe.ExpectColumnValuesToBeNull(column="content_issue", mostly=s.min_pass_rate), _content_issues),
    )  # fmt: skip


class _GxRuntime:
    """The per-process GX context and dataframe batch definition (GX import alone takes seconds)."""

    _lock = threading.Lock()
    _instance: _GxRuntime | None = None

    def __init__(self) -> None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.gx = gx
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        asset = self.context.data_sources.add_pandas("tdm_quality").add_dataframe_asset("features")
        self.batch_definition = asset.add_batch_definition_whole_dataframe("batch")
        self.rules = _rules()

    @classmethod
    def get(cls) -> _GxRuntime:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance


def warm_up() -> float:
    """Import GX and build its context now; seconds it took (0 when already warm)."""
    started = time.perf_counter()
    _GxRuntime.get()
    return time.perf_counter() - started


def run_suites(
    features: pd.DataFrame, settings: QualitySettings, names: Sequence[str] = SUITE_NAMES
) -> dict[str, SuiteResult]:
    """Validate ``features`` (from ``compute_features``) with the named suites, in order."""
    unknown = [name for name in names if name not in SUITE_NAMES]
    if unknown:
        raise ValueError(f"unknown quality suite(s) {unknown}; allowed: {', '.join(SUITE_NAMES)}")
    if features.empty:
        return {name: _empty_batch_result(name) for name in names}
    runtime = _GxRuntime.get()
    with _GxRuntime._lock:  # the shared context is not thread-safe
        return {name: _run_suite(runtime, name, features, settings) for name in names}


def _empty_batch_result(name: str) -> SuiteResult:
    reason = "empty batch: there are no records to validate"
    return SuiteResult(name, passed=False, pass_rate=0.0, observed={"records": 0}, thresholds={},
                       details={"records": 0, "reason": reason})  # fmt: skip


def _run_suite(runtime: _GxRuntime, name: str, features: pd.DataFrame, settings: QualitySettings) -> SuiteResult:
    started = time.perf_counter()
    gx = runtime.gx
    rules = {rule.name: rule for rule in runtime.rules if rule.suite == name}
    expectations = []
    for rule in rules.values():
        expectation = rule.expectation(settings, features)
        expectation.meta = {"rule": rule.name}
        expectations.append(expectation)
    suite = runtime.context.suites.add_or_update(gx.ExpectationSuite(name=name, expectations=expectations))
    validation = runtime.context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=name, data=runtime.batch_definition, suite=suite)
    )
    outcome = validation.run(batch_parameters={"dataframe": features}, result_format=RESULT_FORMAT)

    failed: dict[int, list[RecordIssue]] = {}
    observed: dict[str, Any] = {"records": len(features)}
    thresholds: dict[str, Any] = {}
    failed_batch_rules: list[str] = []
    for result in outcome.results:
        rule = rules[result.expectation_config.meta["rule"]]
        if result.exception_info.get("raised_exception"):
            raise RuntimeError(f"GX failed on {rule.name}: {result.exception_info.get('exception_message')}")
        kwargs = result.expectation_config.kwargs
        thresholds[rule.name] = {k: kwargs[k] for k in ("min_value", "max_value", "mostly", "value_set") if kwargs.get(k) is not None}
        if rule.describe is None:
            observed[rule.name] = result.result.get("observed_value")
            if not result.success:
                failed_batch_rules.append(rule.name)
            continue
        rows = np.asarray(result.result.get("unexpected_index_list") or [], dtype=np.int64)
        observed[rule.name] = {"failing_records": int(rows.size)}
        for row, issue in zip(rows.tolist(), rule.describe(features, rows, settings)):
            failed.setdefault(row, []).append(issue)
    failed = dict(sorted(failed.items()))
    near = features.attrs.get("content_near", {}) if name == "content" else {}
    warnings = {row: [margin_issue(index, measured, settings)] for row, (index, measured) in sorted(near.items()) if row not in failed}
    pass_rate = 1 - len(failed) / len(features)
    # GX applies ``mostly`` per expectation; a suite with two per-record expectations
    # (length: too short, too long) must also hold the threshold over their union.
    passed = bool(outcome.success) and pass_rate >= settings.min_pass_rate - 1e-12
    if name == "balance":
        users, assistants = int(features["user_turns"].sum()), int(features["assistant_turns"].sum())
        observed["assistant_user_ratio"] = assistants / users if users else None
        observed["turns"] = {"user": users, "assistant": assistants}
    samples = [
        {"record": row, "code": issue.code, "field": issue.field, "reason": issue.message}
        for row, issues in list(failed.items())[:SAMPLES_PER_SUITE]
        for issue in issues[:1]
    ] + [_batch_rule_sample(rule, observed[rule], thresholds[rule], features) for rule in failed_batch_rules]
    details = {
        "records": len(features),
        "pass_rate": pass_rate,
        "min_pass_rate": settings.min_pass_rate,
        "gx_success": bool(outcome.success),
        "failed_records": len(failed),
        "issue_counts": dict(Counter(issue.code for issues in failed.values() for issue in issues)),
        "observed": observed,
        "thresholds": thresholds,
        "samples": samples,
        "seconds": time.perf_counter() - started,
    }
    return SuiteResult(
        name=name, passed=passed, pass_rate=pass_rate, observed=observed,
        thresholds=thresholds, failed_records=failed, warnings=warnings, samples=samples, details=json_safe(details),
    )  # fmt: skip


def _batch_rule_sample(rule: str, observed: Any, thresholds: dict[str, Any], features: pd.DataFrame) -> dict[str, Any]:
    """A batch-level failure has no failing record to show; say what was seen instead,
    and for low diversity, which responses repeat most (first record and how often)."""
    sample: dict[str, Any] = {"rule": rule, "reason": f"{rule}: observed {observed}, expected {thresholds}"}
    if rule == "diversity.unique_responses":
        hashes = features["response_hash"]
        sample["most_repeated"] = [
            {"record": int(hashes.index[hashes == value][0]), "times": int(times)}
            for value, times in hashes.value_counts().head(3).items()
        ]
    return sample


def json_safe(value: Any) -> Any:
    """``value`` with numpy scalars made plain and non-finite floats written as strings."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
