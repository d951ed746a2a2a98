"""A Slack-compatible ``chat.postMessage`` server for tests, as a FastAPI app.

Serve it with ``tests.support.http_servers.running_server`` and point the alerts at it with
``TDM_SLACK_API_URL=<base url>/api/``. Every message it receives is appended to the list
the app was made with: the Authorization header, the decoded body (form or JSON, with
``blocks`` decoded) and the raw body, so tests can check what was sent and that the
token went only in the header::

    received: list = []
    with running_server(slack_app(received)) as url:
        ...  # SLACK_BOT_TOKEN=..., TDM_SLACK_API_URL=f"{url}/api/"
"""

import json
from urllib.parse import parse_qs

from fastapi import FastAPI, Request


def slack_app(received: list) -> FastAPI:
    app = FastAPI()

    @app.post("/api/chat.postMessage")
    async def post_message(request: Request):
        raw = (await request.body()).decode()
        body = json.loads(raw) if raw.startswith("{") else {k: v[0] for k, v in parse_qs(raw).items()}
        if isinstance(body.get("blocks"), str):
            body["blocks"] = json.loads(body["blocks"])
        received.append({"authorization": request.headers.get("authorization"), "body": body, "raw": raw})
        return {"ok": True, "channel": body.get("channel"), "ts": str(len(received))}

    return app
