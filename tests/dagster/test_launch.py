"""runs/launch: how a tdm run executes in-process, and how an op gets the job it runs."""

import dagster as dg

from tdm_dagster.runs.launch import LOCATION_JOBS, LocationJobs, ensure_partition, nested_run_tags, run_job, with_info_console
from tdm_dagster.runs.owner import PID_TAG


class Greeting(dg.ConfigurableResource):
    text: str = "unbound"


@dg.op
def greet(greeting: Greeting) -> str:
    return greeting.text


@dg.job
def inner() -> None:
    greet()


@dg.op
def run_inner(context: dg.OpExecutionContext, location_jobs: dg.ResourceParam[LocationJobs]) -> dict:
    job = location_jobs.get("inner")
    result = run_job(job, instance=context.instance, tags=nested_run_tags(context, "test"))
    return {"resources": sorted(job.resource_defs), "output": result.output_for_node("greet"), "run_id": result.run_id}


@dg.job
def outer() -> None:
    run_inner()


def location() -> dg.Definitions:
    defs = dg.Definitions(jobs=[inner, outer], resources={"greeting": Greeting(text="bound"), LOCATION_JOBS: LocationJobs(lambda: defs)})
    return defs


def test_an_op_runs_the_location_job_with_its_resources_bound():
    with dg.instance_for_test() as instance:
        result = run_job(location().resolve_job_def("outer"), instance=instance, tags={"tdm/trigger": "cli"})
        assert result.success
        ran = result.output_for_node("run_inner")
        assert "greeting" in ran["resources"] and ran["output"] == "bound"
        nested = instance.get_run_by_id(ran["run_id"])
        assert nested.tags["tdm/parent_run_id"] == result.run_id and nested.tags["tdm/trigger"] == "test"
        assert nested.tags[PID_TAG] and instance.get_run_by_id(result.run_id).tags["tdm/trigger"] == "cli"
        assert nested.run_config["loggers"]["console"]["config"]["log_level"] == "INFO"


def test_run_job_returns_a_failed_run_instead_of_raising():
    @dg.op
    def boom() -> None:
        raise ValueError("no")

    @dg.job
    def fails() -> None:
        boom()

    with dg.instance_for_test() as instance:
        assert run_job(fails, instance=instance).success is False


def test_info_console_is_added_and_a_given_logger_config_wins():
    assert with_info_console({"ops": {"a": {}}}) == {"ops": {"a": {}}, "loggers": {"console": {"config": {"log_level": "INFO"}}}}
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    assert with_info_console(quiet) == quiet


def test_ensure_partition_adds_a_key_once():
    partitions = dg.DynamicPartitionsDefinition(name="things")
    with dg.instance_for_test() as instance:
        ensure_partition(instance, partitions, "a")
        ensure_partition(instance, partitions, "a")
        assert instance.get_dynamic_partitions("things") == ["a"]
