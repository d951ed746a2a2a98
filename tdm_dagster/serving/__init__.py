"""Serving and deployment of fine-tuned checkpoints (plain Python, no Dagster).

- :mod:`tdm_dagster.serving.server`: ``create_app(serving_dir)`` / ``serve(...)``, an
  OpenAI-compatible HTTP server for the checkpoint named by ``serving_dir/current``.
- :mod:`tdm_dagster.serving.model`: loading a checkpoint, generating from it, and the
  hot reload when that pointer changes.
- :mod:`tdm_dagster.serving.batching`: concurrent requests batched into one generate
  call; :mod:`tdm_dagster.serving.generation_queue`: that call in a worker thread,
  bounded, so the event loop stays free.
- :mod:`tdm_dagster.serving.deploy`: ``deploy(...)`` / ``rollback(...)``, which put a
  checkpoint in place as hard links (or rsync it to another host:
  :mod:`tdm_dagster.serving.remote`), switch the pointer atomically, reload and verify
  (:mod:`tdm_dagster.serving.verify`) and switch back on failure, recording every
  attempt in ``serving_dir/deployments.json``, per target
  (:mod:`tdm_dagster.serving.history`); :mod:`tdm_dagster.serving.choice`: which
  checkpoint a deploy takes (the best, the newest, or the one a user named).

This package imports neither torch, transformers nor fastapi at import time.
"""

from __future__ import annotations

POINTER_FILE = "current"
DEPLOYMENTS_FILE = "deployments.json"
ADMIN_TOKEN_ENV = "TDM_SERVING_ADMIN_TOKEN"
"""The env var holding the token that ``/admin/reload`` requires (sent by ``deploy``)."""

__all__ = ["ADMIN_TOKEN_ENV", "DEPLOYMENTS_FILE", "POINTER_FILE"]
