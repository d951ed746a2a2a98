from tdm_dagster.checks.gate import quality_suites

__all__ = ["quality_suites"]
