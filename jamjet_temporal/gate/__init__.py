"""The policy gate: ``_workflow`` decides every activity a run schedules (sandbox only);
``_activities`` records the decisions and calls and refuses uncleared ones (worker side)."""
