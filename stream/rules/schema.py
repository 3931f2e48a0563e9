"""The JSON Schema of a rule file, generated from the same pydantic models that validate it.

Point an editor's YAML language server at it for completion and checks while
writing rules, e.g. ``# yaml-language-server: $schema=rules.schema.json``.

>>> sorted(rules_json_schema()["properties"])
['segments']
"""

from __future__ import annotations

from typing import Any

from stream.rules.model import RuleModel
from stream.rules.ruleset import Segment


class RuleFile(RuleModel):
    """A rule file: a ``segments:`` list (the loader reads files segment by segment, to report every error)."""

    segments: list[Segment]


def rules_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one rule file; each definition described by its docstring's first paragraph."""
    schema = RuleFile.model_json_schema(by_alias=True)
    for definition in (schema, *schema["$defs"].values()):
        if "description" in definition:
            definition["description"] = definition["description"].split("\n\n")[0]
    return schema
