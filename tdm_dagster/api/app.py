"""The ``tdm api`` application: routers, key store, audit log, limits, metrics, warm gate.

``create_app`` wires the pieces; ``serve`` runs it under uvicorn with tdm's connection
limits (``http.limits``), on 127.0.0.1 unless told otherwise.

Middleware, outermost first: the audit log (so every refusal is recorded), the key
check on the headers (401/403/503 before a body byte is read), the body limit (413,
counting the body as the route reads it), then the routes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.responses import Response

from tdm_dagster.api import admin, datasets, errors, health, lineage, overview, scheduler, validation
from tdm_dagster.api.audit import AuditLog
from tdm_dagster.api.auth import KeyCheck, require
from tdm_dagster.api.keys import KeyStore
from tdm_dagster.api.metrics import ApiMetrics
from tdm_dagster.config.settings import TdmConfig
from tdm_dagster.home import TdmHome
from tdm_dagster.http.limits import BodyLimit, uvicorn_settings

DESCRIPTION = """The training-data manager as a service: datasets, validation through a warm
gate, stats, the queue, health and Prometheus metrics. Send `Authorization: Bearer <key>`
(`tdm api keys create --scope read --name NAME`); `/healthz` and `/readyz` need none.
The key is checked before the request body is read: without a valid key an upload gets
401 (403 outside the key's scopes) at once.

Pickle is never imported over the API, whatever the key or the form fields say: an
upload is never unpickled (unpickling runs code from the file). Import a pickle you
trust on the server with `tdm datasets import --allow-pickle`."""


def create_app(home: TdmHome, config: TdmConfig, *, warm: bool = True) -> FastAPI:
    """The app over ``home`` with ``config``; ``warm`` starts warming the gate at once
    (in a background thread: ``/readyz`` answers 503 until it is warm)."""
    app = FastAPI(title="tdm api", version="1", description=DESCRIPTION)
    app.state.home = home.ensure()
    app.state.config = config
    app.state.keys = KeyStore(home)
    app.state.metrics = ApiMetrics(home)
    app.state.warm_gate = validation.WarmGate()
    errors.install(app)
    routers = (health.router, datasets.router, validation.router, overview.router, lineage.router, scheduler.read_router, scheduler.operate_router, admin.router)
    for router in routers:
        app.include_router(router)  # no prefix: KeyCheck matches the routers' own routes

    @app.get("/metrics", tags=["health"], dependencies=[Depends(require("read"))], response_class=Response)
    def metrics() -> Response:
        """Prometheus text exposition (see ``tdm_dagster.api.metrics`` for the list)."""
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(BodyLimit, limit=config.api.max_upload_bytes, reject=errors.reject)
    routes = [*app.routes, *(route for router in routers for route in router.routes)]
    app.add_middleware(KeyCheck, routes=routes, keys=app.state.keys, reject=errors.reject)
    app.add_middleware(AuditLog, path=home.api_audit_log)  # outermost: every refusal is audited, with its key
    if warm:
        app.state.warm_gate.start(config)
    return app


def serve(home: TdmHome, config: TdmConfig, host: str | None = None, port: int | None = None) -> None:
    """Run the service until interrupted (``api.host``/``api.port`` unless given), announced
    to this machine's ``tdm validate`` meanwhile (:mod:`tdm_dagster.api.local`)."""
    import uvicorn

    from tdm_dagster.api import local

    host, port = host or config.api.host, port or config.api.port
    app = create_app(home, config)

    @asynccontextmanager
    async def announced(_: FastAPI) -> AsyncIterator[None]:
        """From startup to shutdown (uvicorn re-raises SIGTERM after its shutdown, so a
        ``finally`` around ``uvicorn.run`` would not run)."""
        local.announce(home, host, port, config, app.state.keys.admit_session_key(local.LOCAL_KEY_NAME, ("read",)))
        try:
            yield
        finally:
            local.withdraw(home)

    app.router.lifespan_context = announced
    uvicorn.run(app, host=host, port=port, **uvicorn_settings())
