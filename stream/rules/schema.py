"""The JSON Schema of a rule file, generated from the same pydantic models that validate it.

Point an editor's YAML language server at it for completion and checks while
writing rules, e.g. ``# yaml-language-server: $schema=rules.schema.json``.

>>> sorted(rules_json_schema()["properties"])
['models', 'scores', 'segments']
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict

from stream.models import config  # a module: stream.models.config imports stream.rules
from stream.rules.model import RuleModel
from stream.rules.ruleset import Segment
from stream.rules.scores import ScoreDefinition

if TYPE_CHECKING:
    from stream.models.config import ModelsConfig


class RuleFile(RuleModel):
    """A rule file: a ``segments:`` list, a ``scores:`` list or both, and at most one ``models:`` section in all files.

    The loader reads files entry by entry, to report every error; this model gives their schema.
    """

    model_config = ConfigDict(json_schema_extra={"anyOf": [{"required": ["segments"]}, {"required": ["scores"]}]})

    segments: list[Segment] = []
    scores: list[ScoreDefinition] = []
    models: ModelsConfig | None = None


def rules_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one rule file; each definition described by its docstring's first paragraph."""
    RuleFile.model_rebuild(_types_namespace={"ModelsConfig": config.ModelsConfig})  # not importable at class creation
    schema = RuleFile.model_json_schema(by_alias=True)
    for definition in (schema, *schema["$defs"].values()):
        if "description" in definition:
            definition["description"] = definition["description"].split("\n\n")[0]
    return schema
