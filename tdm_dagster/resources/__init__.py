"""Dagster resources: the home directory, the inference server (3090), the skill API."""

from tdm_dagster.resources.home import TdmHomeResource
from tdm_dagster.resources.inference import InferenceServerResource
from tdm_dagster.resources.skill_api import SkillApiResource

__all__ = ["InferenceServerResource", "SkillApiResource", "TdmHomeResource"]
