"""The README's two commands: the quickstart run, and the test command that CI runs verbatim.

``.ci/run`` marks its test command with a comment line containing "the README's test command";
the README must show exactly two shell commands — one that sets up and runs
``qeframe run quickstart``, and that marked line, character for character. ``docs/getting-started.md``
shows the same two commands.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKER = "the README's test command"
QUICKSTART = "qeframe run quickstart"
SHELL_FENCES = {"", "bash", "sh", "shell", "console", "zsh"}


def ci_test_command() -> str:
    """The line of ``.ci/run`` right after the comment that marks the README's test command."""
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if line.lstrip().startswith("#") and MARKER in line:
            following = [nxt.strip() for nxt in lines[i + 1 :] if nxt.strip()]
            assert following and not following[0].startswith("#"), ".ci/run: no command after the marker line"
            return following[0]
    raise AssertionError(f".ci/run has no comment line containing {MARKER!r}")


def shell_commands(markdown: str) -> list[str]:
    """Commands in the shell-fenced code blocks of ``markdown`` (comments and ``$`` prompts removed)."""
    commands = []
    for lang, body in re.findall(r"^```[ \t]*([\w-]*)[^\n]*\n(.*?)^```", markdown, re.MULTILINE | re.DOTALL):
        if lang.lower() not in SHELL_FENCES:
            continue
        for line in body.splitlines():
            line = line.strip()
            if line.startswith("$ "):
                line = line[2:].strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def check_two_commands(path: Path) -> list[str]:
    commands = shell_commands(path.read_text(encoding="utf-8"))
    name = path.relative_to(ROOT)
    assert len(commands) == 2, f"{name} must show exactly two commands, found {len(commands)}: {commands}"
    quickstart = [c for c in commands if QUICKSTART in c]
    assert len(quickstart) == 1, f"{name}: exactly one command must run `{QUICKSTART}`: {commands}"
    test = [c for c in commands if c not in quickstart]
    assert test == [ci_test_command()], (
        f"{name}: the test command must equal the line marked in .ci/run:\n  README: {test}\n  CI:     {ci_test_command()}"
    )
    return commands


def test_ci_marks_a_test_command():
    command = ci_test_command()
    assert "pytest" in command


def test_readme_commands_match_ci():
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    assert QUICKSTART in text
    check_two_commands(readme)


def test_getting_started_shows_the_same_commands():
    commands = check_two_commands(ROOT / "docs" / "getting-started.md")
    readme = ROOT / "README.md"
    assert sorted(commands) == sorted(shell_commands(readme.read_text(encoding="utf-8"))), (
        "README.md and docs/getting-started.md show different commands"
    )


def test_readme_python_example_runs(capsys, monkeypatch):
    """The README's Python example (the one ``python`` block) runs as written, from the repository
    root, and prints what its comments promise: the cut names, the PPT cut of each Horodecki state,
    certified labels, and the gated model's three-valued answers."""
    blocks = re.findall(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, f"README.md: expected one python block, found {len(blocks)}"
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)  # noqa: S102 - the README is our own text
    out = capsys.readouterr().out
    assert "['1|23', '2|13', '3|12']" in out
    batch, certificate, result = namespace["batch"], namespace["certificate"], namespace["result"]
    assert (batch.ground_truth == 1).all()
    assert (certificate.labels[batch.ground_truth == 1] != 0).all()  # no certified label says separable
    assert result.cuts == ["1|23", "2|13", "3|12"] and len(result.answers) == 4
    assert all(a in ("entangled", "separable", "unknown") for row in result.answers for a in row)
