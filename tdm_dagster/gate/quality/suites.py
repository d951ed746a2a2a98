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
from dataclasses import dataclass, field
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
    """Validate ``features`` (from ``compute_features``) with the named suites, in order:
    a batch in one chunk (:class:`SuiteTally`)."""
    tally = SuiteTally(settings, names)
    tally.add(features)
    return tally.results()


_BATCH_COLUMNS = ("response_hash", "user_turns", "assistant_turns")
"""What the batch-level rules read of each row (a few bytes a record, kept for the whole batch)."""


@dataclass
class _SuiteSoFar:
    failed: dict[int, list[RecordIssue]] = field(default_factory=dict)
    warnings: dict[int, list[RecordIssue]] = field(default_factory=dict)
    failing: Counter = field(default_factory=Counter)
    """Failing rows per per-record rule."""
    thresholds: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    last_batch_results: dict = field(default_factory=dict)
    """The batch rules' results over the last chunk: the batch's own when it came in one chunk."""


class SuiteTally:
    """The named suites over a batch fed as consecutive chunks of feature rows (rows
    numbered across the batch). Great Expectations validates each chunk as it comes (the
    failing rows of the per-record rules are kept); over several chunks the batch-level
    rules (distinct responses, the turn sums) run again at the end, over the few columns
    they read, kept for every row. So the results are those of the whole batch validated at once, and
    memory holds one chunk's frame plus a few bytes per row."""

    def __init__(self, settings: QualitySettings, names: Sequence[str] = SUITE_NAMES) -> None:
        unknown = [name for name in names if name not in SUITE_NAMES]
        if unknown:
            raise ValueError(f"unknown quality suite(s) {unknown}; allowed: {', '.join(SUITE_NAMES)}")
        self.settings = settings
        self.names = tuple(names)
        self.rows = 0
        self.chunks = 0
        self._suites = {name: _SuiteSoFar() for name in self.names}
        self._batch_columns: list[pd.DataFrame] = []

    def add(self, features: pd.DataFrame) -> None:
        """Validate the next chunk's rows (index 0..n-1 within the chunk)."""
        if features.empty:
            return
        runtime = _GxRuntime.get()
        with _GxRuntime._lock:  # the shared context is not thread-safe
            for name in self.names:
                self._add_rows(runtime, name, features)
        self._batch_columns.append(features[[column for column in _BATCH_COLUMNS if column in features]])
        self.rows += len(features)
        self.chunks += 1

    def _add_rows(self, runtime: _GxRuntime, name: str, features: pd.DataFrame) -> None:
        started = time.perf_counter()
        suite = self._suites[name]
        rules = [rule for rule in runtime.rules if rule.suite == name]
        near = features.attrs.get("content_near", {}) if name == "content" else {}
        failed: dict[int, list[RecordIssue]] = {}
        suite.last_batch_results = {}
        for rule, result in _validated(runtime, name, rules, features, self.settings):
            if rule.describe is None:
                suite.last_batch_results[rule] = result
                continue
            rows = np.asarray(result.result.get("unexpected_index_list") or [], dtype=np.int64)
            suite.thresholds[rule.name] = _thresholds(result)
            suite.failing[rule.name] += int(rows.size)
            for row, issue in zip(rows.tolist(), rule.describe(features, rows, self.settings)):
                failed.setdefault(row, []).append(issue)
        suite.failed.update((self.rows + row, found) for row, found in sorted(failed.items()))
        suite.warnings.update(
            (self.rows + row, [margin_issue(index, measured, self.settings)]) for row, (index, measured) in sorted(near.items()) if row not in failed
        )  # fmt: skip
        suite.seconds += time.perf_counter() - started

    def results(self) -> dict[str, SuiteResult]:
        """Each suite's result over every row added."""
        if not self.rows:
            return {name: _empty_batch_result(name) for name in self.names}
        batch = pd.concat(self._batch_columns, ignore_index=True) if len(self._batch_columns) > 1 else self._batch_columns[0]
        runtime = _GxRuntime.get()
        with _GxRuntime._lock:
            return {name: self._result(runtime, name, batch) for name in self.names}

    def _result(self, runtime: _GxRuntime, name: str, batch: pd.DataFrame) -> SuiteResult:
        started = time.perf_counter()
        suite, settings = self._suites[name], self.settings
        rules = [rule for rule in runtime.rules if rule.suite == name]
        batch_results = suite.last_batch_results  # one chunk: GX judged the batch rules with the rest
        if self.chunks > 1:
            batch_results = dict(_validated(runtime, name, [rule for rule in rules if rule.describe is None], batch, settings))
        observed: dict[str, Any] = {"records": self.rows}
        thresholds: dict[str, Any] = {}
        failed_batch_rules: list[str] = []
        success = True
        for rule in rules:
            if rule.describe is not None:
                thresholds[rule.name] = suite.thresholds[rule.name]
                observed[rule.name] = {"failing_records": suite.failing[rule.name]}
                success &= _mostly(self.rows, suite.failing[rule.name], suite.thresholds[rule.name]["mostly"])
                continue
            result = batch_results[rule]
            thresholds[rule.name] = _thresholds(result)
            observed[rule.name] = result.result.get("observed_value")
            if not result.success:
                failed_batch_rules.append(rule.name)
                success = False
        pass_rate = 1 - len(suite.failed) / self.rows
        # GX applies ``mostly`` per expectation; a suite with two per-record expectations
        # (length: too short, too long) must also hold the threshold over their union.
        passed = success and pass_rate >= settings.min_pass_rate - 1e-12
        if name == "balance":
            users, assistants = int(batch["user_turns"].sum()), int(batch["assistant_turns"].sum())
            observed["assistant_user_ratio"] = assistants / users if users else None
            observed["turns"] = {"user": users, "assistant": assistants}
        samples = [
            {"record": row, "code": issue.code, "field": issue.field, "reason": issue.message}
            for row, issues in list(suite.failed.items())[:SAMPLES_PER_SUITE]
            for issue in issues[:1]
        ] + [_batch_rule_sample(rule, observed[rule], thresholds[rule], batch) for rule in failed_batch_rules]
        details = {
            "records": self.rows,
            "pass_rate": pass_rate,
            "min_pass_rate": settings.min_pass_rate,
            "gx_success": success,
            "failed_records": len(suite.failed),
            "issue_counts": dict(Counter(issue.code for issues in suite.failed.values() for issue in issues)),
            "observed": observed,
            "thresholds": thresholds,
            "samples": samples,
            "seconds": suite.seconds + time.perf_counter() - started,
        }
        return SuiteResult(
            name=name, passed=passed, pass_rate=pass_rate, observed=observed, thresholds=thresholds,
            failed_records=suite.failed, warnings=suite.warnings, samples=samples, details=json_safe(details),
        )  # fmt: skip


def _mostly(rows: int, unexpected: int, mostly: float) -> bool:
    """Great Expectations' ``mostly`` over rows that add up across chunks."""
    return (rows - unexpected) / rows >= mostly


def _thresholds(result: Any) -> dict[str, Any]:
    kwargs = result.expectation_config.kwargs
    return {k: kwargs[k] for k in ("min_value", "max_value", "mostly", "value_set") if kwargs.get(k) is not None}


def _validated(
    runtime: _GxRuntime, name: str, rules: Sequence[_Rule], frame: pd.DataFrame, settings: QualitySettings
) -> list[tuple[_Rule, Any]]:
    """Each of ``rules`` validated by GX over ``frame``, with its result."""
    if not rules:
        return []
    gx = runtime.gx
    by_name = {rule.name: rule for rule in rules}
    expectations = []
    for rule in rules:
        expectation = rule.expectation(settings, frame)
        expectation.meta = {"rule": rule.name}
        expectations.append(expectation)
    suite = runtime.context.suites.add_or_update(gx.ExpectationSuite(name=name, expectations=expectations))
    validation = runtime.context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=name, data=runtime.batch_definition, suite=suite)
    )
    outcome = validation.run(batch_parameters={"dataframe": frame}, result_format=RESULT_FORMAT)
    found = []
    for result in outcome.results:
        rule = by_name[result.expectation_config.meta["rule"]]
        if result.exception_info.get("raised_exception"):
            raise RuntimeError(f"GX failed on {rule.name}: {result.exception_info.get('exception_message')}")
        found.append((rule, result))
    return found


def _empty_batch_result(name: str) -> SuiteResult:
    reason = "empty batch: there are no records to validate"
    return SuiteResult(name, passed=False, pass_rate=0.0, observed={"records": 0}, thresholds={},
                       details={"records": 0, "reason": reason})  # fmt: skip


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
