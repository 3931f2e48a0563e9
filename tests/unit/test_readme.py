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
