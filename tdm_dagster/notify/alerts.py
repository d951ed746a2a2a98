"""Alerts for failed asset checks and failed runs: Slack (Block Kit) and a generic webhook.

Settings come from the environment only: ``SLACK_BOT_TOKEN``, ``TDM_SLACK_CHANNEL``,
``TDM_SLACK_API_URL`` (Slack's Web API by default; any server that speaks
``chat.postMessage``), ``TDM_ALERT_WEBHOOK_URL`` (optional; receives the same alert as
JSON) and ``TDM_UI_URL`` (for links to the run). The token is never logged, never put in
a message, an error or metadata.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_UI_URL = "http://127.0.0.1:3000"
MAX_OBSERVED = 8


class AlertError(RuntimeError):
    """Sending an alert failed; the message names the channel and Slack's error code."""


@dataclass(frozen=True)
class Alert:
    title: str
    severity: str
    fields: dict[str, str]
    observed: dict[str, str] = field(default_factory=dict)
    link: str = ""

    def blocks(self) -> list[dict[str, Any]]:
        lines = [f"*{key}:* {value}" for key, value in self.fields.items()]
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": self.title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
        ]
        if self.observed:
            observed = "\n".join(f"• `{key}`: {value}" for key, value in self.observed.items())
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*Observed*\n{observed}"}})
        if self.link:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"<{self.link}|Open the run in Dagster>"}})
        return blocks

    def text(self) -> str:
        return f"{self.title} ({self.severity})"


def check_failure_alert(evaluation: Any, run_id: str, ui_url: str, partition: str | None = None) -> Alert:
    """An ``AssetCheckEvaluation`` that failed, as an alert; ``partition`` (the batch) comes
    from the run when the evaluation does not carry it."""
    metadata = {key: getattr(value, "value", value) for key, value in (evaluation.metadata or {}).items()}
    observed = {
        key: str(value)[:120]
        for key, value in metadata.items()
        if key.startswith(("observed", "pass_rate", "threshold", "failed_records"))
    }
    severity = getattr(evaluation.severity, "value", str(evaluation.severity))
    asset = "/".join(evaluation.asset_key.path)
    return Alert(
        title=f"Check failed: {asset} · {evaluation.check_name}",
        severity=severity,
        fields={
            "Asset": asset,
            "Batch": evaluation.partition or partition or "-",
            "Check": evaluation.check_name,
            "Severity": severity,
            "Run": run_id,
        },
        observed=dict(list(observed.items())[:MAX_OBSERVED]),
        link=f"{ui_url.rstrip('/')}/runs/{run_id}",
    )


def run_failure_alert(job_name: str, run_id: str, message: str, ui_url: str) -> Alert:
    return Alert(
        title=f"Run failed: {job_name}",
        severity="ERROR",
        fields={"Job": job_name, "Run": run_id, "Error": message[:500]},
        link=f"{ui_url.rstrip('/')}/runs/{run_id}",
    )


@dataclass(frozen=True)
class Notifier:
    token: str | None
    channel: str | None
    api_url: str = DEFAULT_SLACK_API_URL
    webhook_url: str | None = None
    ui_url: str = DEFAULT_UI_URL

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if environ is None else environ
        api_url = env.get("TDM_SLACK_API_URL") or DEFAULT_SLACK_API_URL
        return cls(
            token=env.get("SLACK_BOT_TOKEN") or None,
            channel=env.get("TDM_SLACK_CHANNEL") or None,
            api_url=api_url if api_url.endswith("/") else f"{api_url}/",
            webhook_url=env.get("TDM_ALERT_WEBHOOK_URL") or None,
            ui_url=env.get("TDM_UI_URL") or DEFAULT_UI_URL,
        )

    @property
    def configured(self) -> bool:
        return bool(self.token and self.channel) or bool(self.webhook_url)

    def __repr__(self) -> str:  # never show the token
        return f"Notifier(channel={self.channel!r}, api_url={self.api_url!r}, token={'***' if self.token else None})"

    def send(self, alert: Alert) -> None:
        if self.token and self.channel:
            self._slack(alert)
        if self.webhook_url:
            self._webhook(alert)

    def _slack(self, alert: Alert) -> None:
        from slack_sdk import WebClient
        from slack_sdk.errors import SlackApiError

        client = WebClient(token=self.token, base_url=self.api_url, timeout=10)
        try:
            client.chat_postMessage(channel=self.channel, text=alert.text(), blocks=alert.blocks())
        except SlackApiError as exc:
            raise AlertError(f"Slack refused the alert for {self.channel}: {exc.response.get('error', 'unknown error')}") from None
        except Exception as exc:  # connection problems: say where, never with the token
            raise AlertError(f"could not reach the Slack API at {self.api_url}: {type(exc).__name__}") from None

    def _webhook(self, alert: Alert) -> None:
        import httpx

        payload = {"title": alert.title, "severity": alert.severity, "fields": alert.fields, "observed": alert.observed, "link": alert.link}
        try:
            httpx.post(self.webhook_url, json=payload, timeout=10).raise_for_status()
        except httpx.HTTPError as exc:
            raise AlertError(f"the alert webhook failed: {type(exc).__name__}") from None
