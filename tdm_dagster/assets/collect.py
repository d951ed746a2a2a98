"""mined_sources: the configured collectors, run on a schedule, feeding the inbox.

Each source's records land in ``$TDM_HOME/inbox/`` as one JSONL file per source, so they
go through the same gate (and the same partitions, reports and rejections) as any file
a person drops there.
"""

from datetime import datetime, timezone

import dagster as dg

from tdm_dagster.files.atomic import atomic_write_jsonl
from tdm_dagster.resources import TdmHomeResource


@dg.asset(
    group_name="collect",
    kinds={"git", "markdown"},
    description="Runs the configured collectors (git history, docs, rated conversation logs) and drops their records into the inbox.",
)
def mined_sources(context: dg.AssetExecutionContext, tdm: TdmHomeResource) -> dg.MaterializeResult:
    from tdm_dagster.ingest.collectors import conversation_logs, doc_sections, git_commits

    home = tdm.home()
    settings = tdm.config().collectors
    collected: dict[str, list] = {"git": [], "docs": [], "conversations": []}
    for repo in settings.git_repos:
        collected["git"] += git_commits(repo, settings.max_commits)
    if settings.docs:
        collected["docs"] += doc_sections(list(settings.docs))
    for log in settings.conversation_logs:
        result = conversation_logs(log)
        collected["conversations"] += result.records
        for problem in result.problems[:5]:
            context.log.warning(f"{log} line {problem['line']}: {problem['reason']}")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d_%H%M%S")
    files = {}
    for source, records in collected.items():
        if records:
            path = home.inbox_dir / f"mined_{source}_{stamp}.jsonl"
            atomic_write_jsonl(path, records)
            files[source] = str(path)
    context.log.info(f"collected {sum(map(len, collected.values()))} records into {len(files)} inbox file(s)")
    return dg.MaterializeResult(
        metadata={
            **{f"records_{source}": dg.MetadataValue.int(len(records)) for source, records in collected.items()},
            "inbox_files": dg.MetadataValue.json(files),
        }
    )
