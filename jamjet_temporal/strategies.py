"""Strategies for tasks that iterate: ``reflection`` (draft, critique, refine until confident).

Workflow side (pure). The implementation lives in ``jamjet_temporal.authoring``.
"""

from jamjet_temporal.authoring._strategies import Iteration, ReflectionResult, loop_until_confident

__all__ = ["Iteration", "ReflectionResult", "loop_until_confident"]
