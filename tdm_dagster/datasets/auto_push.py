"""``storage.auto_push``: every new dataset version (add, import, derive, ...) is pushed to
``storage.remote`` as soon as it is committed, so a team's remote follows each operation
without a ``tdm datasets push``.

The push runs after the commit, outside the dataset's lock: the version is committed here
whatever the remote does. A push that fails (remote down, no credentials) does not undo
or fail the operation: it is logged as a warning naming the version and the remote
(credentials masked), and ``tdm datasets push NAME`` later sends what is missing (a push
moves only what the remote lacks).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from tdm_dagster.home import TdmHome

if TYPE_CHECKING:
    from tdm_dagster.datasets.registry import DatasetRegistry
    from tdm_dagster.storage.remote import Transfer

logger = logging.getLogger(__name__)


def push_if_configured(home: TdmHome, registry: DatasetRegistry, name: str, version: str) -> Transfer | None:
    """Push ``name`` ``version`` when ``storage.auto_push`` is on; the transfer, or None
    (off, or the push failed: then a warning says why)."""
    from tdm_dagster.config.settings import ConfigError, load_config

    try:
        storage = load_config(home).storage
    except ConfigError as error:
        logger.warning("dataset %s %s: not auto-pushed: %s", name, version, error)
        return None
    if not storage.auto_push:
        return None
    from tdm_dagster.datasets.sync import push
    from tdm_dagster.http.retry import mask_credentials
    from tdm_dagster.storage.remote import Remote, RemoteError

    if not storage.remote:
        logger.warning("dataset %s %s: not auto-pushed: storage.auto_push is on but storage.remote is not set", name, version)
        return None
    try:
        return push(registry, Remote(storage.remote, endpoint_url=storage.endpoint_url), name, version)
    except (RemoteError, OSError) as error:
        logger.warning("dataset %s %s is committed here but storage.auto_push to %s failed: %s; "
                       "`tdm datasets push %s` sends it later", name, version, mask_credentials(storage.remote), error, name)
        return None
