"""``tdm api``: the data manager as a REST service (FastAPI), thin wiring over the domain
packages the CLI uses (datasets, gate, stats, queue).

One module per idea: ``keys`` (API keys and scopes), ``auth`` (the scope each route
needs, checked on the headers before the body is read: 401/403/503), ``audit`` (the log
of writes and deletes), ``errors`` (domain errors as 4xx), ``uploads`` (uploads on disk;
no server path in an answer), ``datasets``, ``validation`` (the warm gate), ``health``
and ``overview`` (health, readiness, stats, queue), ``metrics`` (Prometheus), ``app``
(assembly and ``serve``), ``client`` (what ``tdm validate`` uses to reach a running
service). FastAPI and prometheus_client are imported only by these modules, never by
``tdm_dagster.definitions``.
"""
