"""The crontab of docs/guides/first-batch.md works as written: its lines, run by sh the way cron runs them,
record runs in the instance the UI reads."""

import os
import re
import subprocess

import dagster as dg

from tests.support.dagster_processes import ROOT, instance_folder


def crontab_from_docs() -> tuple[dict[str, str], dict[str, str]]:
    """The docs' first cron block: its variable lines, and each job's command."""
    block = re.search(r"```cron\n(.*?)```", (ROOT / "docs" / "guides" / "first-batch.md").read_text(), re.S).group(1)
    variables, commands = {}, {}
    for line in block.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if re.match(r"^[A-Z_]+=", line):
            name, value = line.split("=", 1)
            variables[name] = value.strip('"')
        else:
            command = line.split(None, 5)[5]
            commands[command.split()[2]] = command
    return variables, commands


def test_the_docs_crontab_runs_each_scheduled_job(tmp_path, home):
    from tdm_dagster.definitions import defs

    variables, commands = crontab_from_docs()
    scheduled = {s.job_name for s in defs.schedules}
    assert set(commands) == scheduled  # one cron line per scheduled job, no more
    data = tmp_path / "data"
    instance_folder(data / "tdm" / "dagster")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    if "PYTHONPATH" in os.environ:  # a checkout run from elsewhere: its code, not the installed one
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    for name, value in variables.items():  # as cron sets them, with this machine's paths
        env[name] = value.replace("/data/tdm", str(data / "tdm")).replace("/path/to/tdm-dagster", str(ROOT))
    command = commands["refresh_stats"].replace("/data/tdm", str(data / "tdm"))
    done = subprocess.run(["/bin/sh", "-c", command], env=env, capture_output=True, text=True, timeout=300)
    log = (data / "tdm" / "cron.log").read_text()
    assert done.returncode == 0, log[-3000:]
    with dg.DagsterInstance.from_config(str(data / "tdm" / "dagster")) as instance:
        [run] = instance.get_runs()
        assert run.job_name == "refresh_stats" and run.status == dg.DagsterRunStatus.SUCCESS
        assert instance.get_latest_materialization_event(dg.AssetKey("data_stats")) is not None
