"""Every rule example in the README is a valid rule file."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from stream.rules import load_rules

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_rule_examples_load(tmp_path: Path) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 6
    for i, block in enumerate(blocks):
        path = tmp_path / f"example{i}.yaml"
        path.write_text("segments:\n" + textwrap.indent(block, "  "))
        assert load_rules(path).segments, block


def test_readme_rule_file_examples_load(tmp_path: Path) -> None:
    """```yml blocks are whole rule files (scores:, segments:, models:)."""
    blocks = re.findall(r"```yml\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    for i, block in enumerate(blocks):
        path = tmp_path / f"file{i}.yaml"
        path.write_text(block)
        ruleset = load_rules(path)
        assert ruleset.segments or ruleset.scores or ruleset.models, block

