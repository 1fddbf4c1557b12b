"""YAML pipelines: JamJet's graph format, validated on the client, run by ``PipelineWorkflow``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jamjet_temporal._shared._lazy import lazy_exports

if TYPE_CHECKING:
    from jamjet_temporal._shared._wire import PIPELINE_WORKFLOW
    from jamjet_temporal.pipeline._spec import PipelineSpec, load_pipeline, parse_pipeline
    from jamjet_temporal.pipeline._workflow import (
        PipelineResult,
        PipelineRun,
        PipelineWorkflow,
        ToolSignature,
    )

__all__ = [
    "PIPELINE_WORKFLOW",
    "PipelineResult",
    "PipelineRun",
    "PipelineSpec",
    "PipelineWorkflow",
    "ToolSignature",
    "load_pipeline",
    "parse_pipeline",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "._spec": ["PipelineSpec", "load_pipeline", "parse_pipeline"],
        "._workflow": ["ToolSignature", "PipelineResult", "PipelineRun", "PipelineWorkflow"],
        "jamjet_temporal._shared._wire": ["PIPELINE_WORKFLOW"],
    },
)
