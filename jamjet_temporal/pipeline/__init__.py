"""YAML pipelines: JamJet's graph format, validated on the client, run by ``PipelineWorkflow``."""

from ._spec import PipelineSpec, load_pipeline, parse_pipeline
from ._workflow import PIPELINE_WORKFLOW, PipelineResult, PipelineRun, PipelineWorkflow

__all__ = [
    "PIPELINE_WORKFLOW",
    "PipelineResult",
    "PipelineRun",
    "PipelineSpec",
    "PipelineWorkflow",
    "load_pipeline",
    "parse_pipeline",
]
