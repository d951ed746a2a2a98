"""``tdm datasets push/pull/remote list`` against real object-store servers on 127.0.0.1.

moto's S3 server and fake-gcs-server (one of each per module) stand in for S3 and GCS;
the CLI talks to them through s3fs/gcsfs exactly as it would to the real services. What
a remote holds is looked at (and damaged) with a separate client of the same server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tdm_dagster.datasets import DatasetRegistry
from tdm_dagster.datasets.records import canonical_json
from tdm_dagster.home import TdmHome
from tests.support.object_stores import PAUSED_PULL, PAUSED_PUSH, REPO, SECRET, ObjectStoreServer, remote_files, run_tdm, use

@pytest.fixture(params=["s3", "gs"])
def remote(request, monkeypatch, home) -> tuple[ObjectStoreServer, str]:
    server = request.getfixturevalue("s3_server" if request.param == "s3" else "gcs_server")
    return server, use(server, monkeypatch)


@pytest.fixture
def s3_remote(s3_server, monkeypatch, home) -> tuple[ObjectStoreServer, str]:
    return s3_server, use(s3_server, monkeypatch)


def chats(tag: str, count: int) -> list[dict]:
    return [{"messages": [{"role": "user", "content": f"{tag} question {i}"}, {"role": "assistant", "content": f"{tag} answer {i}"}]} for i in range(count)]


def build(home: TdmHome, name: str, sizes: list[int]) -> DatasetRegistry:
    """A dataset with one version per size, each appending that many new records (one new chunk each)."""
    registry = DatasetRegistry(home)
    registry.create(name, description="shared set", tags=["team"])
    for index, size in enumerate(sizes):
        registry.append(name, chats(f"{name}{index}", size))
    return registry


def tdm(*args: str, ok: bool = True):
    return run_tdm("datasets", *args, ok=ok)


def tdm_json(*args: str) -> dict:
    """The ``--json`` summary (stdout; progress lines go to stderr)."""
    return json.loads(tdm(*args, "--json").stdout)


def at(monkeypatch, root: Path) -> DatasetRegistry:
    """Switch this process to the home at ``root`` (another machine) and return its registry."""
    monkeypatch.setenv("TDM_HOME", str(root))
    return DatasetRegistry(TdmHome(root).ensure())


def contents(registry: DatasetRegistry, name: str, version: str | None = None) -> list[str]:
    return [canonical_json(record) for record in registry.records(name, version)]


def test_push_then_pull_gives_identical_versions(remote, home, tmp_path, monkeypatch):
    server, url = remote
    trainer = build(home, "team_set", [300, 40])
    first = tdm("push", "team_set", "--remote", url)
    assert "pushed team_set 1.0, 1.1" in first.output and "2 object(s) sent" in first.output
    assert tdm("remote", "list", "--remote", url).output.split() == ["team_set", "1.0,", "1.1"]
    stored = remote_files(server, url)
    assert sorted(p for p in stored if p.startswith("datasets/")) == ["datasets/team_set/1.0.json", "datasets/team_set/1.1.json"]
    for chunk in {s.chunk for s in trainer._segments("team_set", "1.1")}:
        assert stored[f"objects/{chunk[:2]}/{chunk}"] == trainer.store.path(chunk).stat().st_size

    serving = at(monkeypatch, tmp_path / "serving-box")
    (tmp_path / "serving-box" / "config.yaml").write_text(f"storage:\n  remote: {url}\n")  # the default --remote
    pulled = tdm("pull", "team_set")
    assert "pulled team_set 1.0, 1.1" in pulled.output
    for version in ("1.0", "1.1"):
        here, there = trainer.version_info("team_set", version), serving.version_info("team_set", version)
        assert (there.checksum, there.record_count, there.created_at, there.parents) == (here.checksum, here.record_count, here.created_at, here.parents)
        assert contents(serving, "team_set", version) == contents(trainer, "team_set", version)
    for chunk in {s.chunk for s in trainer._segments("team_set", "1.1")}:
        assert serving.store.path(chunk).read_bytes() == trainer.store.path(chunk).read_bytes()
    assert serving.describe("team_set").current_version == "1.1" and serving.describe("team_set").tags == ["team"]
    assert serving.verify().ok
    again = tdm("pull", "team_set")
    assert "nothing new" in again.output and "0 object(s) received" in again.output


def test_an_append_sends_only_its_new_chunk(s3_remote, home, monkeypatch, tmp_path):
    server, url = s3_remote
    registry = build(home, "grow", [3000])
    sent_first = tdm_json("push", "grow", "--remote", url)["bytes"]
    registry.append("grow", chats("one-percent", 30))
    chunks_before = set(remote_files(server, url))
    second = tdm_json("push", "grow", "--remote", url)
    new_chunk = [s.chunk for s in registry._segments("grow", "1.1")][-1]
    assert second["moved"] == ["1.1"] and second["already"] == ["1.0"]
    assert (second["objects"], second["objects_present"]) == (1, 1)
    assert second["bytes"] == registry.store.path(new_chunk).stat().st_size < sent_first * 0.05
    assert set(remote_files(server, url)) - chunks_before == {f"objects/{new_chunk[:2]}/{new_chunk}", "datasets/grow/1.1.json"}

    # a box that already pulled 1.0 receives only the new chunk too
    serving = at(monkeypatch, tmp_path / "serving-box")
    tdm("pull", "grow", "--version", "1.0", "--remote", url)
    update = tdm_json("pull", "grow", "--remote", url)
    assert (update["moved"], update["objects"], update["bytes"]) == (["1.1"], 1, second["bytes"])
    assert contents(serving, "grow") == contents(registry, "grow")


def test_a_corrupt_remote_object_or_manifest_is_refused_by_name_and_a_later_pull_resumes(s3_remote, home, monkeypatch, tmp_path):
    server, url = s3_remote
    registry = build(home, "fragile", [200, 30])
    tdm("push", "fragile", "--remote", url)
    chunk = registry._segments("fragile", "1.1")[-1].chunk  # the chunk only 1.1 holds
    key = f"{url.split('://', 1)[1]}/objects/{chunk[:2]}/{chunk}"
    client = server.filesystem()
    good = client.cat_file(key)
    client.pipe_file(key, good[:100] + bytes([good[100] ^ 1]) + good[101:])  # one flipped bit, same size

    serving = at(monkeypatch, tmp_path / "serving-box")
    refused = tdm("pull", "fragile", "--remote", url, ok=False)
    assert refused.exit_code == 1
    assert f"{url}/objects/{chunk[:2]}/{chunk} is corrupt" in refused.output
    assert [v.version for v in serving.versions("fragile")] == ["1.0"]  # the intact version is whole, 1.1 absent
    assert not serving.store.path(chunk).exists()
    assert not [p for p in serving.store.root.rglob("*.tmp")]  # no temp file left either

    client.pipe_file(key, good)
    manifest = f"{url.split('://', 1)[1]}/datasets/fragile/1.1.json"
    client.pipe_file(manifest, client.cat_file(manifest).replace(b'"record_count": 230', b'"record_count": 229'))
    refused = tdm("pull", "fragile", "--remote", url, ok=False)
    assert refused.exit_code == 1 and f"{url}/datasets/fragile/1.1.json is corrupt" in refused.output
    assert [v.version for v in serving.versions("fragile")] == ["1.0"]

    client.pipe_file(manifest, client.cat_file(manifest).replace(b'"record_count": 229', b'"record_count": 230'))
    resumed = tdm_json("pull", "fragile", "--remote", url)
    assert (resumed["moved"], resumed["already"], resumed["objects"], resumed["objects_present"]) == (["1.1"], ["1.0"], 1, 1)
    assert contents(serving, "fragile") == contents(registry, "fragile") and serving.verify().ok


def test_versions_that_differ_under_one_number_are_never_replaced(s3_remote, home, monkeypatch, tmp_path):
    _, url = s3_remote
    build(home, "twin", [50])
    tdm("push", "twin", "--remote", url)
    other = build(TdmHome(tmp_path / "other-box").ensure(), "twin", [60])
    monkeypatch.setenv("TDM_HOME", str(tmp_path / "other-box"))
    for verb in ("push", "pull"):
        refused = tdm(verb, "twin", "--remote", url, ok=False)
        assert refused.exit_code == 1 and "version 1.0 there holds other records" in refused.output
    assert other.version_info("twin").record_count == 60
    assert tdm("push", "twin", ok=False).exit_code == 2  # no --remote and no storage.remote


def _paused(seam: str, verb: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """``tdm datasets VERB ARGS`` with ``seam`` (PAUSED_PUSH or PAUSED_PULL), once it has paused after one object."""
    process = subprocess.Popen(
        [sys.executable, "-c", seam, "datasets", verb, *args], cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **env}, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    for line in process.stderr:
        if line.startswith("one object"):
            return process
    raise AssertionError(f"the {verb} never moved an object: {process.wait()} {process.stdout.read()}")


def _paused_push(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return _paused(PAUSED_PUSH, "push", args, env)


def test_a_push_killed_midway_shows_nothing_and_resumes(s3_remote, home, monkeypatch, tmp_path):
    server, url = s3_remote
    registry = build(home, "big", [100, 100, 100, 100])  # version 1.3 needs four chunks
    client = _paused_push(["big", "--version", "1.3", "--remote", url], {"GO_FILE": str(tmp_path / "never")})
    client.send_signal(signal.SIGKILL)
    client.wait(timeout=30)
    assert tdm("remote", "list", "--remote", url).output.strip() == "no datasets on the remote"
    assert [p for p in remote_files(server, url) if not p.startswith("objects/")] == []
    assert len(remote_files(server, url)) == 1  # one chunk made it before the kill

    summary = tdm_json("push", "big", "--version", "1.3", "--remote", url)
    assert (summary["moved"], summary["objects"], summary["objects_present"]) == (["1.3"], 3, 1)
    serving = at(monkeypatch, tmp_path / "serving-box")
    tdm("pull", "big", "--remote", url)
    assert [v.version for v in serving.versions("big")] == ["1.3"]
    assert contents(serving, "big") == contents(registry, "big") and serving.verify().ok


def tdm_process(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", "from tdm_dagster.cli import main; main()", "datasets", *args],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def finished(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "Traceback" not in err and SECRET not in out + err
    return json.loads(out)


def test_concurrent_pushes_and_concurrent_pulls_of_one_dataset_all_succeed(s3_remote, home, monkeypatch, tmp_path):
    server, url = s3_remote
    registry = build(home, "race", [80, 80, 80])
    for summary in [finished(p) for p in [tdm_process("push", "race", "--remote", url, "--json") for _ in range(2)]]:
        assert sorted(summary["moved"] + summary["already"]) == ["1.0", "1.1", "1.2"]
    stored = remote_files(server, url)
    chunks = {s.chunk for v in ("1.0", "1.1", "1.2") for s in registry._segments("race", v)}
    assert set(stored) == {f"objects/{c[:2]}/{c}" for c in chunks} | {f"datasets/race/{v}.json" for v in ("1.0", "1.1", "1.2")}

    serving = at(monkeypatch, tmp_path / "serving-box")
    pulls = [finished(p) for p in [tdm_process("pull", "race", "--remote", url, "--json") for _ in range(2)]]
    assert sorted(pulls[0]["moved"] + pulls[1]["moved"]) == ["1.0", "1.1", "1.2"]  # each version committed once
    assert [v.version for v in serving.versions("race")] == ["1.0", "1.1", "1.2"]
    assert contents(serving, "race") == contents(registry, "race") and serving.verify().ok


def test_an_s3_server_killed_midpush_fails_cleanly_and_a_rerun_completes(s3_server, home, monkeypatch, tmp_path):
    """moto keeps objects in memory, so the restarted server starts empty (a real S3 keeps
    them: then the rerun sends only what is missing, as the test above shows)."""
    url = use(s3_server, monkeypatch)
    registry = build(home, "outage", [60, 60, 60])
    go = tmp_path / "go"
    client = _paused_push(["outage", "--remote", url], {"GO_FILE": str(go)})
    s3_server.kill()
    go.touch()
    out, err = client.communicate(timeout=120)
    assert client.returncode == 1, out + err
    assert f"Error: {url}: writing datasets/outage/1.0.json failed: EndpointConnectionError" in err, err
    assert "run the same command again to go on" in err
    assert "Traceback" not in err and SECRET not in out + err
    s3_server.start()
    s3_server.filesystem().mkdir(url.split("://", 1)[1].split("/")[0])
    assert tdm("remote", "list", "--remote", url).output.strip() == "no datasets on the remote"
    tdm("push", "outage", "--remote", url)
    serving = at(monkeypatch, tmp_path / "serving-box")
    tdm("pull", "outage", "--remote", url)
    assert contents(serving, "outage") == contents(registry, "outage") and serving.verify().ok


def test_a_gcs_server_killed_midpush_and_restarted_lets_the_push_finish(gcs_server, home, monkeypatch, tmp_path):
    """fake-gcs-server keeps its objects on disk: after a SIGKILL and a restart the stored
    objects are still there, the waiting push goes on, and no version was visible meanwhile."""
    url = use(gcs_server, monkeypatch)
    registry = build(home, "outage", [60, 60, 60])
    go = tmp_path / "go"
    client = _paused_push(["outage", "--version", "1.2", "--remote", url], {"GO_FILE": str(go)})
    gcs_server.kill()
    gcs_server.start()
    assert tdm("remote", "list", "--remote", url).output.strip() == "no datasets on the remote"
    assert len(remote_files(gcs_server, url)) == 1
    go.touch()
    out, err = client.communicate(timeout=120)
    assert client.returncode == 0, err
    assert "3 object(s) sent" in out and "Traceback" not in err
    assert tdm("remote", "list", "--remote", url).output.split() == ["outage", "1.2"]
    serving = at(monkeypatch, tmp_path / "serving-box")
    tdm("pull", "outage", "--remote", url)
    assert contents(serving, "outage") == contents(registry, "outage") and serving.verify().ok


def test_the_remote_and_its_endpoint_come_from_config(s3_remote, home, monkeypatch):
    server, url = s3_remote
    build(home, "configured", [10])
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    home.config_path.write_text(f"storage:\n  remote: {url}\n  endpoint_url: {server.url}\n")
    assert "pushed configured 1.0" in tdm("push", "configured").output
    assert tdm("remote", "list").output.split() == ["configured", "1.0"]
    home.config_path.write_text("storage:\n  remote: https://example.com/bucket\n")
    refused = tdm("remote", "list", ok=False)
    assert refused.exit_code == 2 and "storage.remote is 'https://example.com/bucket'; expected an s3://bucket/prefix" in refused.output
    assert tdm("push", "configured", "--remote", "s3://Bad_Bucket/x", ok=False).exit_code == 2


def test_a_sealed_manifest_naming_a_path_as_an_object_is_refused(s3_remote, home, monkeypatch, tmp_path):
    """A manifest's seal proves it is intact, not that its writer meant well: every object
    id and segment is checked before anything becomes a local path or a catalog row."""
    from tdm_dagster.storage.remote import Remote

    _, url = s3_remote
    build(home, "hostile", [5])
    tdm("push", "hostile", "--remote", url)
    remote = Remote(url)
    body = remote.read_manifest("datasets/hostile/1.0.json")
    body["version"]["version"] = "2.0"
    body["objects"]["../../../escaped"] = 10
    remote.create_manifest("datasets/hostile/2.0.json", body)
    serving = at(monkeypatch, tmp_path / "serving-box")
    refused = tdm("pull", "hostile", "--version", "2.0", "--remote", url, ok=False)
    assert refused.exit_code == 1 and f"{url}/datasets/hostile/2.0.json is not a manifest of hostile 2.0 (ValueError: objects: '../../../escaped' is not an object id" in refused.output
    assert serving.list_datasets() == [] and not list(tmp_path.rglob("escaped"))


# -- a tampered remote (sealed manifests whose writer did not mean well) -----------------------


def _forge(url: str, name: str, version: str, change) -> None:
    """Publish ``version`` of ``name``: a copy of 1.0's manifest changed by ``change(body)``, sealed anew."""
    from tdm_dagster.storage.remote import Remote

    remote = Remote(url)
    body = remote.read_manifest(f"datasets/{name}/1.0.json")
    body["version"]["version"] = version
    change(body)
    remote.create_manifest(f"datasets/{name}/{version}.json", body)


PEAK_AT_EXIT = """
import atexit, sys
def _peak():  # VmHWM: this process's own high-water mark, counted from its exec
    line = next(line for line in open('/proc/self/status') if line.startswith('VmHWM:'))
    open({path!r}, 'w').write(line.split()[1])
atexit.register(_peak)
from tdm_dagster.cli import main
main()
"""


def _pull_measured(tmp_path: Path, *args: str) -> tuple[int, str, int]:
    """``tdm datasets pull ARGS`` in a child process: (exit code, stderr, its peak RSS in
    MiB). The peak is the child's VmHWM, not ``wait4``'s ``ru_maxrss``: the latter also
    counts the pages of the (large, late in a suite) test process the child was forked from."""
    peak_file = tmp_path / "peak-kib"
    process = subprocess.run(
        [sys.executable, "-c", PEAK_AT_EXIT.format(path=str(peak_file)), "datasets", "pull", *args],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    return process.returncode, process.stderr, int(peak_file.read_text()) // 1024


def test_a_segment_beyond_its_object_is_refused_before_any_record_is_read(s3_remote, home, monkeypatch, tmp_path):
    """A segment [chunk, 0, 10^9] once made pull allocate 12 GB before refusing. The row
    counts of the chunks (from their Parquet footers) are checked before anything is read."""
    _, url = s3_remote
    registry = build(home, "huge", [300])
    tdm("push", "huge", "--remote", url)
    chunk = registry._segments("huge", "1.0")[0].chunk
    rows = 300_000_000

    def stretched(body):
        body["segments"] = [[chunk, 0, rows]]
        body["version"]["record_count"] = rows  # consistent with its segments: only the chunk itself can tell

    _forge(url, "huge", "2.0", stretched)
    _forge(url, "huge", "3.0", lambda body: body.update(segments=[[chunk, 0, rows]]))  # inconsistent: refused unread
    serving = at(monkeypatch, tmp_path / "serving-box")
    code, err, peak_mib = _pull_measured(tmp_path, "huge", "--version", "2.0", "--remote", url)
    assert code == 1 and f"segment 0 names rows [0, {rows}) of object {chunk}, which holds 300 records; nothing was read" in err, err
    assert peak_mib < 600, f"the refusal came after {peak_mib} MiB had been allocated"
    refused = tdm("pull", "huge", "--version", "3.0", "--remote", url, ok=False)
    assert refused.exit_code == 1 and f"3.0.json is not a manifest of huge 3.0 (ValueError: segments: hold {rows} records, the version 300)" in refused.output
    assert serving.list_datasets() == []


@pytest.mark.parametrize(
    "field, change, named",
    [
        ("parents", lambda body: body["version"].update(parents=["../../etc"]), "version.parents[0]: '../../etc' is not another version"),
        ("NaN metric", lambda body: body["version"].update(metrics={"loss": float("nan")}), "version.metrics.loss: nan is not a JSON number"),
        ("infinite metric", lambda body: body["version"].update(metrics={"a": {"b": float("inf")}}), "version.metrics.a.b: inf is not a JSON number"),
        ("count as text", lambda body: body["version"].update(record_count="12"), "version.record_count: '12' is not a record count"),
        ("checksum", lambda body: body["version"].update(checksum="../x"), "version.checksum: '../x' is not a sha256 checksum"),
        ("tags", lambda body: body["dataset"].update(tags="team"), "dataset.tags: not a list"),
        ("spec", lambda body: body["dataset"].update(spec="../../spec"), "dataset.spec: '../../spec' is not a spec name"),
        ("timestamp", lambda body: body["version"].update(created_at="yesterday"), "version.created_at: 'yesterday' is not an ISO 8601 timestamp"),
        ("unknown key", lambda body: body["version"].update(extra=1), "version: unknown keys ['extra']"),
        ("bool as row", lambda body: body["segments"][0].__setitem__(1, True), "segments[0]: [True, 12) is not a row range"),
    ],
)
def test_every_field_of_a_pulled_manifest_is_checked(s3_remote, home, monkeypatch, tmp_path, field, change, named):
    """A parent "../../etc" was stored once (and every later ``add`` failed), and a NaN
    metric made ``show --json`` print bare NaN: now each is refused, naming the field."""
    _, url = s3_remote
    build(home, "forged", [12])
    tdm("push", "forged", "--remote", url)
    _forge(url, "forged", "1.1", change)
    serving = at(monkeypatch, tmp_path / "serving-box")
    refused = tdm("pull", "forged", "--remote", url, ok=False)
    assert refused.exit_code == 1 and f"1.1.json is not a manifest of forged 1.1 (ValueError: {named}" in refused.output, refused.output
    assert [v.version for v in serving.versions("forged")] == ["1.0"]  # the genuine version came through; nothing of 1.1
    shown = json.loads(tdm("show", "forged", "--json").stdout)  # strict JSON: a bare NaN would not parse
    assert "NaN" not in json.dumps(shown)


def test_one_version_pulled_onto_a_different_local_history_is_refused(s3_remote, home, monkeypatch, tmp_path):
    """The full pull refused a remote 1.0 that differs from the local one; pulling only 1.1
    (whose parent is the remote's 1.0) must be refused too, whether the remote holds 1.0 or not."""
    _, url = s3_remote
    trainer = build(home, "lineage", [50, 10])
    tdm("push", "lineage", "--remote", url)
    only_child = url + "-child"
    tdm("push", "lineage", "--version", "1.1", "--remote", only_child)  # 1.1 alone: its manifest records its parent's checksum

    other = at(monkeypatch, tmp_path / "other-box")
    build(TdmHome(tmp_path / "other-box"), "lineage", [60])
    for remote in (url, only_child):
        refused = tdm("pull", "lineage", "--version", "1.1", "--remote", remote, ok=False)
        assert refused.exit_code == 1, refused.output
        assert "version 1.1 builds on version 1.0, and version 1.0 here holds other records" in refused.output
    assert [v.version for v in other.versions("lineage")] == ["1.0"] and other.version_info("lineage").record_count == 60
    new_chunk = trainer._segments("lineage", "1.1")[-1].chunk
    assert not other.store.path(new_chunk).exists()  # refused before anything was received

    same = at(monkeypatch, tmp_path / "same-box")
    tdm("pull", "lineage", "--version", "1.0", "--remote", url)
    assert "pulled lineage 1.1" in tdm("pull", "lineage", "--version", "1.1", "--remote", only_child).output
    assert contents(same, "lineage") == contents(trainer, "lineage")


def test_a_killed_pulls_temp_files_go_with_the_next_pull_and_a_live_ones_stay(s3_remote, home, monkeypatch, tmp_path):
    _, url = s3_remote
    trainer = build(home, "resumed", [40, 40])
    tdm("push", "resumed", "--remote", url)
    serving = at(monkeypatch, tmp_path / "serving-box")
    killed = _paused(PAUSED_PULL, "pull", ["resumed", "--remote", url], {"GO_FILE": str(tmp_path / "never")})
    killed.kill()
    killed.wait(timeout=30)
    leftover = list(serving.store.root.rglob("*.tmp"))
    assert len(leftover) == 1 and ".parquet." in leftover[0].name
    live = _paused(PAUSED_PULL, "pull", ["resumed", "--remote", url], {"GO_FILE": str(tmp_path / "go")})
    (in_flight,) = set(serving.store.root.rglob("*.tmp")) - set(leftover)

    tdm("pull", "resumed", "--remote", url)
    assert list(serving.store.root.rglob("*.tmp")) == [in_flight]  # the dead one's temp is gone, the live one's kept
    (tmp_path / "go").touch()
    out, err = live.communicate(timeout=120)
    assert live.returncode == 0, err
    assert list(serving.store.root.rglob("*.tmp")) == []
    assert contents(serving, "resumed") == contents(trainer, "resumed") and serving.verify().ok


# -- credentials in an endpoint URL are masked wherever it is shown --------------------------------

ENDPOINT_PASSWORD, ENDPOINT_TOKEN = "pw-in-endpoint-9f2", "token-in-endpoint-7c1"


def test_tdm_config_masks_credentials_in_the_endpoint(home):
    home.config_path.write_text(f'storage:\n  endpoint_url: "https://minio:{ENDPOINT_PASSWORD}@store.lan:9000/?token={ENDPOINT_TOKEN}&v=2"\n')
    text = run_tdm("config").output
    assert 'endpoint_url: "https://***@store.lan:9000/?token=***&v=***"' in text, text
    shown = json.loads(run_tdm("config", "--json").output)["storage"]["endpoint_url"]
    assert shown == "https://***@store.lan:9000/?token=***&v=***"
    for output in (text, json.dumps(shown)):
        assert ENDPOINT_PASSWORD not in output and ENDPOINT_TOKEN not in output and "minio" not in output


def test_a_config_error_masks_credentials_in_the_value_it_quotes(home):
    home.config_path.write_text(f'storage:\n  endpoint_url: "ftp://minio:{ENDPOINT_PASSWORD}@store.lan/?token={ENDPOINT_TOKEN}"\n')
    refused = run_tdm("config", ok=False)
    assert refused.exit_code != 0 and "storage.endpoint_url is 'ftp://***@store.lan/?token=***'; expected an http" in refused.output, refused.output
    assert ENDPOINT_PASSWORD not in refused.output and ENDPOINT_TOKEN not in refused.output


@pytest.mark.parametrize("credentials", [f"?token={ENDPOINT_TOKEN}", f"?sig=a%2B{ENDPOINT_TOKEN}", "user-9:" + ENDPOINT_PASSWORD + "@"])
def test_a_remote_error_never_echoes_credentials_of_the_endpoint(s3_remote, home, credentials):
    server, url = s3_remote
    endpoint = f"http://{credentials}127.0.0.1:{server.port}/" if credentials.endswith("@") else f"{server.url}/{credentials}"
    home.config_path.write_text(f'storage:\n  remote: {url}\n  endpoint_url: "{endpoint}"\n')
    refused = run_tdm("datasets", "remote", "list", ok=False)
    assert refused.exit_code == 1 and f"Error: {url}: listing datasets failed:" in refused.output, refused.output
    assert ENDPOINT_TOKEN not in refused.output and ENDPOINT_PASSWORD not in refused.output and "user-9" not in refused.output, refused.output
    if credentials.startswith("?"):  # the client quotes the endpoint in its error: masked
        assert "?token=***" in refused.output or "?sig=***" in refused.output, refused.output


@pytest.mark.parametrize(
    "text, endpoints, masked",
    [
        ("see https://u:p4ss@host/x?token=abc#k=v now", (), "see https://***@host/x?token=***#k=*** now"),
        ("rejected token abcd%2Bef (abcd+ef)", ("http://h/?token=abcd%2Bef",), "rejected token *** (***)"),
        ("http://box:8765/v1/x and s3://bucket/prefix", (), "http://box:8765/v1/x and s3://bucket/prefix"),
        ("no url, short value 12 stays", ("http://h/?v=12",), "no url, short value 12 stays"),
    ],
)
def test_mask_credentials(text, endpoints, masked):
    from tdm_dagster.http.retry import mask_credentials

    assert mask_credentials(text, *endpoints) == masked
