"""One moto S3 server and one fake-gcs-server per test module (see tests/support/object_stores.py)."""

import pytest

from tests.support.object_stores import ObjectStoreServer


@pytest.fixture(scope="module")
def s3_server():
    server = ObjectStoreServer.s3().start()
    yield server
    server.kill()


@pytest.fixture(scope="module")
def gcs_server(tmp_path_factory):
    server = ObjectStoreServer.gcs(tmp_path_factory.mktemp("gcs")).start()
    yield server
    server.kill()
