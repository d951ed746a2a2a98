"""Dagster resources: the home directory, the inference server (3090), the skill API,
the trainer (4090)."""

from tdm_dagster.resources.home import TdmHomeResource
from tdm_dagster.resources.inference import InferenceServerResource
from tdm_dagster.resources.skill_api import SkillApiResource
from tdm_dagster.resources.trainer import TrainerResource

__all__ = ["InferenceServerResource", "SkillApiResource", "TdmHomeResource", "TrainerResource"]
