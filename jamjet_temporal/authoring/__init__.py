"""``@task`` and ``@workflow``: authoring crash-safe agents (``_task``, ``_workflow``, ``_agent``
and ``_strategies`` are workflow-side; ``_activities`` holds the activity-side helpers)."""
