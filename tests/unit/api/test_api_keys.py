"""``tdm api`` keys and scopes against a running service: 401 without or with an unknown
key, 403 outside a key's scopes, rotation and revocation without a restart, the audit
log of writes and deletes, and no key anywhere but the create output."""

from __future__ import annotations

import json
import multiprocessing
import stat

import httpx
import pytest
from click.testing import CliRunner

from tdm_dagster import cli
from tdm_dagster.api.audit import read_entries
from tdm_dagster.api.keys import KeyStore
from tests.support.api_server import api_service

# (method, path, scope it needs); a request allowed through auth may still be 404/422
ROUTES = [
    ("GET", "/v1/datasets", "read"),
    ("GET", "/v1/datasets/nothing/versions", "read"),
    ("GET", "/v1/stats", "read"),
    ("GET", "/v1/queue", "read"),
    ("GET", "/v1/lineage/nothing", "read"),
    ("GET", "/v1/lineage?batch=nothing", "read"),
    ("GET", "/metrics", "read"),
    ("POST", "/v1/validate", "read"),
    ("POST", "/v1/datasets/nothing/import", "write"),
    ("DELETE", "/v1/datasets/nothing", "delete"),
    ("GET", "/v1/scheduler/status", "read"),
    ("POST", "/v1/scheduler/run", "operate"),
    ("PUT", "/v1/scheduler/job", "operate"),
    ("GET", "/v1/keys", "admin"),
    ("DELETE", "/v1/keys/nobody", "admin"),
]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with api_service(tmp_path_factory.mktemp("api-keys") / "home") as running:
        yield running


def test_health_readiness_and_docs_need_no_key(api):
    assert httpx.get(api.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(api.url + "/readyz")
    assert ready.status_code in (200, 503)
    if ready.status_code == 503:
        assert all(line.startswith("gate: ") for line in ready.json()["not_ready"]), ready.json()
    assert "swagger" in httpx.get(api.url + "/docs").text.lower()
    paths = httpx.get(api.url + "/openapi.json").json()["paths"]
    assert {"/v1/datasets", "/v1/validate", "/v1/datasets/{name}/export", "/metrics", "/readyz"} <= set(paths)


@pytest.mark.parametrize("method,path,needed", ROUTES)
def test_every_route_refuses_missing_unknown_and_out_of_scope_keys(api, method, path, needed):
    def call(headers):
        return httpx.request(method, api.url + path, headers=headers)

    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer tdm_not-a-key"}):
        refused = call(headers)
        assert refused.status_code == 401, (headers, refused.text)
        assert refused.headers["www-authenticate"] == "Bearer"
    for scope in api.keys:
        answer = call(api.auth(scope))
        if scope in (needed, "admin"):
            assert answer.status_code not in (401, 403), (scope, answer.text)
        else:
            assert answer.status_code == 403, (scope, answer.text)
            assert f"needs {needed!r}" in answer.json()["detail"] and api.keys[scope] not in answer.text


def test_rotation_and_revocation_work_without_a_restart(api):
    runner = CliRunner()
    created = runner.invoke(cli.main, ["api", "keys", "create", "--scope", "read", "--name", "ci-2"])
    assert created.exit_code == 0, created.output
    new_key = created.output.splitlines()[0]
    assert new_key.startswith("tdm_") and len(new_key) > 40
    assert httpx.get(api.url + "/v1/datasets", headers={"Authorization": f"Bearer {new_key}"}).status_code == 200

    old = runner.invoke(cli.main, ["api", "keys", "create", "--scope", "read", "--name", "ci-1", "--json"])
    old_key = json.loads(old.output)["key"]
    assert httpx.get(api.url + "/v1/queue", headers={"Authorization": f"Bearer {old_key}"}).status_code == 200
    revoked = runner.invoke(cli.main, ["api", "keys", "revoke", "ci-1"])
    assert revoked.exit_code == 0 and "revoked key 'ci-1'" in revoked.output
    gone = httpx.get(api.url + "/v1/queue", headers={"Authorization": f"Bearer {old_key}"})
    assert gone.status_code == 401 and gone.json()["detail"] == "unknown or revoked API key"
    assert httpx.get(api.url + "/v1/queue", headers={"Authorization": f"Bearer {new_key}"}).status_code == 200

    again = runner.invoke(cli.main, ["api", "keys", "revoke", "ci-1"])
    assert again.exit_code == 1 and "no key named 'ci-1'" in again.output
    clash = runner.invoke(cli.main, ["api", "keys", "create", "--scope", "read", "--name", "ci-2"])
    assert clash.exit_code == 2 and "exists already" in clash.output
    bad = runner.invoke(cli.main, ["api", "keys", "create", "--scope", "root", "--name", "x"])
    assert bad.exit_code == 2 and "'root' is not one of" in bad.output

    listed = runner.invoke(cli.main, ["api", "keys", "list", "--json"])
    names = [k["name"] for k in json.loads(listed.output)]
    assert "ci-2" in names and "ci-1" not in names
    stored = api.home.api_keys_file.read_text()
    for key in (new_key, old_key, *api.keys.values()):
        assert key not in listed.output and key not in stored
    assert stat.S_IMODE(api.home.api_keys_file.stat().st_mode) == 0o600


def test_keys_over_the_api_with_admin_scope(api):
    made = httpx.post(api.url + "/v1/keys", json={"name": "robot", "scopes": ["write"]}, headers=api.auth("admin"))
    assert made.status_code == 201, made.text
    robot = made.json()["key"]
    assert httpx.get(api.url + "/v1/keys", headers=api.auth("admin")).text.count("robot") == 1
    assert robot not in httpx.get(api.url + "/v1/keys", headers=api.auth("admin")).text
    assert httpx.get(api.url + "/v1/datasets", headers={"Authorization": f"Bearer {robot}"}).status_code == 403
    bad = httpx.post(api.url + "/v1/keys", json={"name": "../x", "scopes": ["read"]}, headers=api.auth("admin"))
    assert bad.status_code == 422 and "key name" in bad.json()["detail"]
    assert httpx.delete(api.url + "/v1/keys/robot", headers=api.auth("admin")).json() == {"revoked": "robot"}
    assert httpx.delete(api.url + "/v1/keys/robot", headers=api.auth("admin")).status_code == 404
    assert httpx.get(api.url + "/v1/datasets", headers={"Authorization": f"Bearer {robot}"}).status_code == 401


def test_writes_and_deletes_are_audited_without_keys(api):
    before = len(read_entries(api.home.api_audit_log))
    httpx.delete(api.url + "/v1/datasets/absent", headers=api.auth("delete"))  # 404
    httpx.delete(api.url + "/v1/datasets/absent", headers=api.auth("read"))  # 403
    httpx.delete(api.url + "/v1/datasets/absent")  # 401
    httpx.get(api.url + "/v1/datasets", headers=api.auth("read"))  # a read: not audited
    entries = read_entries(api.home.api_audit_log)[before:]
    assert [(e["key"], e["scope"], e["method"], e["path"], e["status"]) for e in entries] == [
        ("delete", "delete", "DELETE", "/v1/datasets/absent", 404),
        ("read", "delete", "DELETE", "/v1/datasets/absent", 403),
        (None, "delete", "DELETE", "/v1/datasets/absent", 401),
    ]
    assert all(e["time"].endswith("+00:00") and e["unix_time"] > 0 for e in entries)
    text = api.home.api_audit_log.read_text()
    assert not any(key in text for key in api.keys.values())
    assert stat.S_IMODE(api.home.api_audit_log.stat().st_mode) == 0o600


def _create(args):
    root, name = args
    from tdm_dagster.home import TdmHome

    return KeyStore(TdmHome(root)).create(name, ["read"])[1]


def test_concurrent_creates_all_land(api):
    """Four processes create eight keys at once. Spawned, never forked: this process holds
    the server's threads, and a forked child can inherit a lock one of them held."""
    names = [f"parallel-{i}" for i in range(8)]
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        made = pool.map(_create, [(api.home.root, name) for name in names])
    listed = {key.name for key in KeyStore(api.home).list()}
    assert set(names) <= listed
    for key in made:
        assert httpx.get(api.url + "/v1/queue", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_readiness_names_what_is_not_ready(tmp_path):
    from tdm_dagster.api.app import create_app
    from tdm_dagster.config.settings import TdmConfig
    from tdm_dagster.home import TdmHome
    from tests.support.http_servers import running_server

    cold = create_app(TdmHome(tmp_path / "home"), TdmConfig(), warm=False)  # no keys, gate not warmed
    with running_server(cold) as url:
        answer = httpx.get(url + "/readyz")
        assert answer.status_code == 503 and answer.json()["ready"] is False
        problems = answer.json()["not_ready"]
        assert len(problems) == 2 and problems[0].startswith("gate: warming up") and problems[1].startswith("keys: none yet")
        assert httpx.get(url + "/healthz").status_code == 200
        assert httpx.get(url + "/v1/datasets", headers={"Authorization": "Bearer tdm_x"}).status_code == 401


@pytest.mark.parametrize("command", [["list"], ["create", "--name", "ci", "--scope", "read"], ["revoke", "ci"]])
def test_key_commands_name_a_corrupt_key_store_in_one_line(home, command):
    home.api_keys_file.parent.mkdir(parents=True, exist_ok=True)
    home.api_keys_file.write_text("{not json")
    result = CliRunner().invoke(cli.main, ["api", "keys", *command])
    assert result.exit_code == 1, result.output
    assert "key store unreadable" in result.output and "keys.json" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert home.api_keys_file.read_text() == "{not json"  # nothing overwritten
