from tdm_dagster.checks.quality import quality_suites

__all__ = ["quality_suites"]
