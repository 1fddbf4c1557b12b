"""The README and the reference pages cannot drift from the code.

- Every ```` ```python ```` block of ``README.md`` (and each worked example of ``docs/models.md``,
  a block followed by the output it prints) runs as a script of its own, against the session's
  dev server and the local model server, and must print the output block shown under it.
- Every ``jamjet ...`` command of the README's command table exists with the flags it shows,
  and every command the CLI has is in the table.
- ``docs/configuration.md`` names every option of every CLI command (and none that is gone),
  every ``JamJetConfig`` field and every environment variable the package reads.
- ``docs/troubleshooting.md`` names every error class of ``jamjet_temporal.errors``.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.metadata
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jamjet_temporal.cli._devserver import DevServer
from jamjet_temporal.modelserver import ModelServer

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CONFIGURATION = ROOT / "docs" / "configuration.md"
#: The address the snippets connect to, replaced by the session dev server's.
SNIPPET_ADDRESS = '"localhost:7233"'

_FENCE = re.compile(r"^```([a-z]*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


@dataclasses.dataclass(frozen=True)
class Example:
    """A Python block of a page and the output block that follows it (None: none follows)."""

    page: str
    line: int
    code: str
    output: str | None

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def examples(path: Path, *, every: bool) -> list[Example]:
    """The page's Python blocks: all of them (``every``), else those followed by an output."""
    text = path.read_text()
    fences = list(_FENCE.finditer(text))
    found = []
    for n, fence in enumerate(fences):
        if fence[1] != "python":
            continue
        after = fences[n + 1] if n + 1 < len(fences) else None
        output = after[2] if after is not None and after[1] == "" else None
        if every or output is not None:
            line = text.count("\n", 0, fence.start()) + 1
            found.append(Example(path.relative_to(ROOT).as_posix(), line, fence[2], output))
    return found


EXAMPLES = [
    *examples(README, every=True),
    *examples(ROOT / "docs" / "models.md", every=False),
]


def test_the_readme_and_the_models_page_have_runnable_examples() -> None:
    pages = {example.page for example in EXAMPLES}
    assert pages == {"README.md", "docs/models.md"}, pages


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_example_runs_as_a_script_and_prints_what_the_page_shows(
    example: Example, temporal_server: DevServer, model_server: ModelServer, tmp_path: Path
) -> None:
    assert example.output is not None, (
        f"{example}: show what the block prints in a ``` block right after it"
    )
    assert SNIPPET_ADDRESS in example.code, f"{example}: connect to {SNIPPET_ADDRESS}"
    script = tmp_path / "example.py"
    script.write_text(example.code.replace(SNIPPET_ADDRESS, f'"{temporal_server.address}"'))
    env = {**os.environ, "OPENAI_BASE_URL": model_server.base_url}
    env.pop("OPENAI_API_KEY", None)
    env.pop("PYTHONPATH", None)  # as a user runs it: from a folder of its own, package installed
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{example} failed:\n{done.stderr[-3000:]}"
    assert done.stdout.strip() == example.output.strip(), (
        f"{example} printed:\n{done.stdout}\nstderr:\n{done.stderr[-2000:]}"
    )


# The command line: the README's table and docs/configuration.md against the real command tree.


def _tree() -> Any:
    """The click command tree of the ``jamjet`` console script."""
    import typer.main

    script = importlib.metadata.entry_points(group="console_scripts")["jamjet"]
    assert script.value == "jamjet_temporal.cli:main", script.value
    from jamjet_temporal.cli._app import app

    return typer.main.get_command(app)


def commands(group: Any = None, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    """``("audit export", command)`` for every command of the CLI that is not a group."""
    group = _tree() if group is None else group
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from commands(command, (*path, name))
        else:
            yield " ".join((*path, name)), command


def options(command: Any) -> set[str]:
    """Every option spelling a command takes (``--worker``, ``--no-worker``, ``-o``)."""
    found: set[str] = set()
    for param in command.params:
        if param.param_type_name == "option":
            found.update(param.opts, param.secondary_opts)
    return found - {"--help"}


def readme_commands() -> list[tuple[str, list[str]]]:
    """``(words after jamjet, flags shown)`` of every ``jamjet ...`` in the command table."""
    text = README.read_text()
    table = text[text.index("## Commands") :]
    table = table[: table.index("\n## ", 1)]
    found = []
    for span in re.findall(r"`(jamjet [^`]+)`", table):
        tokens = span.split()[1:]
        words = []
        for token in tokens:
            if not re.fullmatch(r"[a-z][a-z0-9-]*", token):
                break
            words.append(token)
        flags = re.findall(r"(?:(?<=\s)|(?<=\[))(--?[a-z][a-z0-9-]*)", span)
        found.append((" ".join(words), flags))
    return found


def test_every_command_in_the_readme_table_exists_with_its_flags() -> None:
    known = dict(commands())
    shown = readme_commands()
    assert len(shown) >= 15, shown
    resolved = set()
    for words, flags in shown:
        # The table may name a value after a command (`keygen alice@example.com`): the longest
        # prefix of the words that is a command is the command.
        parts = words.split()
        while parts and " ".join(parts) not in known:
            parts.pop()
        assert parts, f"README: `jamjet {words}`: no such command (known: {sorted(known)})"
        name = " ".join(parts)
        resolved.add(name)
        missing = set(flags) - options(known[name])
        assert not missing, f"README: `jamjet {name}` has no option {sorted(missing)}"
    absent = sorted(set(known) - resolved)
    assert not absent, f"README's command table does not show: {absent}"


def test_the_jamjet_script_answers_help_for_every_command() -> None:
    """Through the installed console script: the top level lists each group and command."""
    script = Path(sys.executable).parent / "jamjet"
    done = subprocess.run(
        [str(script), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    for name in {name.split()[0] for name, _ in commands()}:
        assert re.search(rf"\b{re.escape(name)}\b", done.stdout), name
    from typer.testing import CliRunner

    from jamjet_temporal.cli._app import app

    runner = CliRunner()
    for name, _ in commands():
        result = runner.invoke(app, [*name.split(), "--help"])
        assert result.exit_code == 0, (name, result.output)


def configuration_sections() -> dict[str, str]:
    """docs/configuration.md's ``### `jamjet NAME` `` sections, by command name."""
    text = CONFIGURATION.read_text()
    parts = re.split(r"^### `jamjet ([a-z0-9 -]+)`[^\n]*$", text, flags=re.MULTILINE)
    return {
        parts[i]: parts[i + 1].split("\n## ", 1)[0].split("\n### ", 1)[0]
        for i in range(1, len(parts), 2)
    }


def test_configuration_page_lists_every_cli_option_and_no_other() -> None:
    sections = configuration_sections()
    known = dict(commands())
    assert sorted(sections) == sorted(known), "docs/configuration.md: one section per command"
    for name, command in known.items():
        text = sections[name]
        documented = set(re.findall(r"`(--?[a-z][a-z0-9-]*)", text))
        missing = options(command) - documented
        gone = documented - options(command)
        assert not missing, f"docs/configuration.md, `jamjet {name}`: add {sorted(missing)}"
        assert not gone, f"docs/configuration.md, `jamjet {name}`: no option {sorted(gone)}"


def test_configuration_page_names_every_config_field() -> None:
    from jamjet_temporal import JamJetConfig
    from jamjet_temporal.plugin import (
        AuditConfig,
        BudgetConfig,
        LLMConfig,
        MemoryConfig,
        TracingConfig,
    )

    text = CONFIGURATION.read_text()
    for cls in (JamJetConfig, LLMConfig, AuditConfig, MemoryConfig, BudgetConfig, TracingConfig):
        assert f"`{cls.__name__}`" in text, cls.__name__
        for field in dataclasses.fields(cls):
            assert f"`{field.name}`" in text, f"docs/configuration.md: {cls.__name__}.{field.name}"


_ENV_NAME = re.compile(r"(JAMJET|OPENAI|OTEL|TEMPORAL)_[A-Z0-9_]*[A-Z0-9]")


def environment_variables() -> set[str]:
    """Environment variable names written as strings in the package (templates aside)."""
    found: set[str] = set()
    package = ROOT / "jamjet_temporal"
    for path in package.rglob("*.py"):
        if "templates" in path.relative_to(package).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if _ENV_NAME.fullmatch(node.value):
                    found.add(node.value)
    return found


def test_configuration_page_names_every_environment_variable() -> None:
    names = environment_variables()
    assert {"OPENAI_BASE_URL", "JAMJET_AUDIT_KEY", "JAMJET_AUDIT_STORE"} <= names, names
    text = CONFIGURATION.read_text()
    missing = sorted(name for name in names if f"`{name}`" not in text)
    assert not missing, f"docs/configuration.md does not name {missing}"


def test_troubleshooting_page_names_every_error() -> None:
    import jamjet_temporal.errors

    text = (ROOT / "docs" / "troubleshooting.md").read_text()
    missing = [name for name in jamjet_temporal.errors.__all__ if f"`{name}" not in text]
    assert not missing, f"docs/troubleshooting.md: add an entry for {missing}"
