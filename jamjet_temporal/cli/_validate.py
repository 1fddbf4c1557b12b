"""``jamjet validate``: every problem of a pipeline file at once, with file, line and fix.

The file itself is checked completely (structure, types, references between nodes, templates,
conditions, the state schema). Tools and agents are checked when their module can be found
(``--tools``, or ``tools.py`` beside the file); MCP servers when the file or a ``jamjet.toml``
beside it declares them. What cannot be found is a warning, which does not fail validation.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from jamjet_temporal._shared._yaml import read_file
from jamjet_temporal.cli._format import say
from jamjet_temporal.cli._tools import (
    agent_specs,
    default_tool_modules,
    load_tools,
    needs_tools,
    tool_signatures,
)
from jamjet_temporal.errors import JamJetError, PipelineSpecError
from jamjet_temporal.pipeline._spec import check_pipeline


def validate(
    files: Annotated[list[Path], typer.Argument(help="Pipeline YAML file(s).")],
    tools: Annotated[
        list[str] | None,
        typer.Option(
            "--tools",
            help="Module or .py file with the @task tools and agents the pipeline calls "
            "(repeatable); default: tools.py beside the pipeline.",
        ),
    ] = None,
) -> None:
    """Check pipeline files without running them: exit 0 when valid, 1 when not."""
    invalid = 0
    for file in files:
        invalid += 0 if _validate_one(file, tools) else 1
    raise typer.Exit(1 if invalid else 0)


def _validate_one(file: Path, tools: list[str] | None) -> bool:
    try:
        name, text = read_file(file, what="pipeline file", error=PipelineSpecError)
    except PipelineSpecError as err:
        say(f"✗ {err}")
        return False
    check = check_pipeline(text, name)
    problems = list(check.problems)
    warnings = list(check.warnings)
    spec = check.spec
    if spec is not None and needs_tools(spec):
        modules = tools if tools is not None else default_tool_modules(file, spec)
        if not modules:
            warnings.append(
                PipelineSpecError(
                    "its tools and agents were not checked: no tools module was found",
                    file=name,
                    fix="put tools.py beside the pipeline, or pass --tools MODULE",
                )
            )
        else:
            try:
                loaded = load_tools(modules)
                tool_signatures(spec, loaded)
                agent_specs(spec, loaded)
            except PipelineSpecError as err:
                problems.append(err)
            except (JamJetError, ImportError, SyntaxError) as err:
                problems.append(
                    PipelineSpecError(
                        f"cannot load the tools module {modules}: {err}",
                        file=name,
                        fix="fix the module, or pass --tools MODULE",
                    )
                )
    for problem in sorted(problems, key=lambda p: (p.file != name, p.line or 0)):
        say(f"✗ {problem}")
    for warning in warnings:
        say(f"! {warning}")
    if problems:
        noun = "problem" if len(problems) == 1 else "problems"
        say(f"✗ {name}: {len(problems)} {noun}")
        return False
    assert spec is not None
    kinds = Counter(node.type for node in spec.nodes.values())
    summary = ", ".join(f"{count} {kind}" for kind, count in kinds.items())
    say(
        f"✓ {name}: valid · workflow {spec.workflow.id} {spec.workflow.version} · "
        f"{len(spec.nodes)} nodes ({summary})"
    )
    return True
