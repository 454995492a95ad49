"""Prompts as versioned templates: name, version, text with named fields, answer schema.

Every row a model writes records the template it was asked with
(``Entity.prompt_version`` = ``"<name>@<version>"``), so rows made with different
wording can be told apart and re-made. Change a template's text or schema only
together with its version: ``PromptTemplate.fingerprint`` hashes both, and a test
pins the fingerprint of each released version.
"""

from __future__ import annotations

import hashlib
import json
import string
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PromptTemplate:
    """One prompt: ``text`` with ``{named}`` fields (``str.format`` syntax; ``{{`` for a
    literal brace), an optional ``system`` message and the JSON ``schema`` of the answer."""

    name: str
    version: str
    text: str
    schema: dict[str, Any] | None = None
    system: str | None = None
    fields: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        names = set()
        for _, name, _, _ in string.Formatter().parse(self.text):
            if name is None:
                continue
            if not name.isidentifier():  # positional or attribute fields would render silently wrong
                raise ValueError(f"template {self.name}: field {{{name}}} must be a plain name")
            names.add(name)
        object.__setattr__(self, "fields", frozenset(names))

    @property
    def id(self) -> str:
        """``name@version``: what rows record as their ``prompt_version``."""
        return f"{self.name}@{self.version}"

    @property
    def fingerprint(self) -> str:
        """12 hex of the SHA-1 of text, system and schema: changes whenever they do."""
        blob = json.dumps([self.text, self.system, self.schema], sort_keys=True)
        return hashlib.sha1(blob.encode("utf-8")).hexdigest()[:12]

    def render(self, **values: Any) -> str:
        """The text with every field filled; a missing or unknown field raises KeyError."""
        missing = sorted(self.fields - set(values))
        extra = sorted(set(values) - self.fields)
        if missing or extra:
            raise KeyError(f"template {self.id}: missing fields {missing}, unknown fields {extra}")
        return self.text.format(**values)


# -- entity recognition ------------------------------------------------------------

#: The answer of ENTITY_DESCRIBE. Flat and fully required so that servers' strict
#: structured-output modes accept it (no free-form objects: attributes are a list).
ENTITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "category": {"type": "string", "minLength": 1, "maxLength": 60},
        "generalized_noun": {"type": "string", "minLength": 1, "maxLength": 40},
        "referring_expression": {"type": "string", "minLength": 3, "maxLength": 200},
        "attributes": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 60}, "maxItems": 12},
        "caption": {"type": "string", "minLength": 3, "maxLength": 500},
    },
    "required": ["category", "generalized_noun", "referring_expression", "attributes", "caption"],
    "additionalProperties": False,
}

ENTITY_DESCRIBE = PromptTemplate(
    name="entity_describe",
    version="1",
    system="You describe objects in videos precisely and briefly. You only state what is visible.",
    text=(
        "These images come from one video. The same object is marked in every image with a "
        "{marker} outline and tint.\n{image_guide}\n"
        'A tracker labelled the object "{category_hint}"; it is visible from {start_s:.2f} s to '
        "{end_s:.2f} s. Other objects tracked in the video: {others}.\n"
        "Describe only the marked object:\n"
        "- category: what it is, one or two words (correct the tracker's label if it is wrong);\n"
        "- generalized_noun: a general word for it (person, animal, vehicle, ...);\n"
        '- referring_expression: a short phrase starting with "the" that picks out this object '
        "and no other object in the video (use colour, position, size, motion);\n"
        "- attributes: short visible properties (colour, clothing, size, action);\n"
        "- caption: one sentence on what the object looks like and does."
    ),
    schema=ENTITY_SCHEMA,
)

#: The answer of ENTITY_DISAMBIGUATE: only a new expression.
DISAMBIGUATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"referring_expression": {"type": "string", "minLength": 3, "maxLength": 200}},
    "required": ["referring_expression"],
    "additionalProperties": False,
}

ENTITY_DISAMBIGUATE = PromptTemplate(
    name="entity_disambiguate",
    version="1",
    system=ENTITY_DESCRIBE.system,
    text=(
        "These images come from one video. One object is marked in every image with a {marker} "
        "outline and tint.\n{image_guide}\n"
        'It was described as "{expression}", but that phrase also fits other objects of the '
        "video, described as: {competing}.\n"
        'Write a new referring_expression, a short phrase starting with "the", that fits the '
        "marked object and none of the others (use colour, position, size, motion or its "
        "relation to other objects)."
    ),
    schema=DISAMBIGUATE_SCHEMA,
)

#: Released templates by name; the entity stage looks its templates up here.
TEMPLATES: dict[str, PromptTemplate] = {t.name: t for t in (ENTITY_DESCRIBE, ENTITY_DISAMBIGUATE)}


def get_template(name: str) -> PromptTemplate:
    """The released template called ``name`` (KeyError listing the known ones)."""
    if name not in TEMPLATES:
        raise KeyError(f"unknown prompt template {name!r}; known: {sorted(TEMPLATES)}")
    return TEMPLATES[name]
