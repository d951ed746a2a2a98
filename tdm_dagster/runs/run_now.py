"""``python -m tdm_dagster.runs.run_now JOB RUN_ID``: run a location job now, under the run
id the caller chose (``POST /v1/scheduler/run`` returns it before the run starts), on the
instance in ``$DAGSTER_HOME``, as ``tdm``'s own commands run one (:func:`run_job`)."""

from __future__ import annotations

import sys

from tdm_dagster.runs.instance import open_instance
from tdm_dagster.runs.launch import run_job


def main(argv: list[str]) -> int:
    job_name, run_id = argv
    from tdm_dagster.location import build_definitions

    job = build_definitions().get_repository_def().get_job(job_name)
    with open_instance() as instance:
        result = run_job(job, instance=instance, run_id=run_id, tags={"tdm/trigger": "api"})
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
