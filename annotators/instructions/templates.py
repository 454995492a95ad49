"""Question phrasings per task type (the template set named by ``GENERATOR_ID``).

Placeholders: ``{region}`` a region placeholder ("<region0>"), ``{name}`` a referring
phrase, ``{t}`` a time as printed by ``derive.fmt_t`` (always followed by "s"),
``{phrase}`` an event clause, ``{plural}`` a category's plural, ``{a}``/``{b}`` two
names. The checker finds the stated time with ``derive.times_in`` and the asked
attribute of ``region_qa`` with ``ATTRIBUTE_PATTERNS``: every phrasing keeps them.
People are asked what they wear (``region_qa.clothing``), never their colour; an event
shorter than a frame step is asked as a moment (``*.instant``), answered "At 2.24s.".
"""

from __future__ import annotations

import re

TEMPLATES: dict[str, list[str]] = {
    "region_description": [
        "What is {region} doing?",
        "Describe what {region} does in the video.",
        "What does {region} do throughout the video?",
        "Give a short description of {region} and its actions.",
    ],
    "region_qa.colour": [
        "What colour is {region}?",
        "Which colour does {region} have?",
        "Name the main colour of {region}.",
    ],
    "region_qa.clothing": [
        "What is {region} wearing?",
        "What clothes does {region} have on?",
        "Describe what {region} is dressed in.",
    ],
    "region_qa.category": [
        "What kind of object is {region}?",
        "What type of object is {region}?",
        "Which category does {region} belong to?",
    ],
    "region_qa.position": [
        "Where in the frame is {region}?",
        "In which part of the frame is {region} located?",
        "Where is {region} positioned in the image?",
    ],
    "timestamp_qa": [
        "What happens at {t}s?",
        "What is going on in the video at {t}s?",
        "Describe what takes place at {t}s.",
    ],
    "mask_time_qa": [
        "What is {region} doing at {t}s?",
        "At {t}s, what is {region} doing?",
        "Describe {region} at {t}s.",
    ],
    "temporal_grounding.visible": [
        "When is {name} visible?",
        "During which part of the video can {name} be seen?",
        "Give the time span in which {name} appears.",
    ],
    "temporal_grounding.event": [
        "When does this happen: {phrase}?",
        "Find the time span of the event: {phrase}.",
        "During which part of the video does this take place: {phrase}?",
    ],
    "temporal_grounding.instant": [
        "When does this happen: {phrase}?",
        "At what moment does this happen: {phrase}?",
        "Give the time of the event: {phrase}.",
    ],
    "spatial_grounding": [
        "Where is {name} at {t}s?",
        "Give the bounding box of {name} at {t}s.",
        "Locate {name} at {t}s.",
    ],
    "st_grounding.visible": [
        "When and where is {name} visible?",
        "Track {name}: give its time span and its boxes.",
        "Find {name} in time and space.",
    ],
    "st_grounding.event": [
        "When and where does this happen: {phrase}?",
        "Localise in time and space: {phrase}.",
        "Give the time span and the boxes of the event: {phrase}.",
    ],
    "st_grounding.instant": [
        "When and where does this happen: {phrase}?",
        "Localise in time and space: {phrase}.",
        "Give the moment and the box of the event: {phrase}.",
    ],
    "timestamp_verification.visible": [
        "Is {name} visible at {t}s?",
        "Can {name} be seen at {t}s?",
        "At {t}s, is {name} in view?",
    ],
    "timestamp_verification.event": [
        "Is it true that {phrase} at {t}s?",
        "At {t}s, is the following happening: {phrase}?",
        "Does this happen at {t}s: {phrase}?",
    ],
    "entity_order": [
        "Which appears first, {a} or {b}?",
        "Who shows up earlier in the video: {a} or {b}?",
        "Between {a} and {b}, which one is seen first?",
    ],
    "counting": [
        "How many {plural} appear in the video?",
        "Count the {plural} in the video.",
        "How many {plural} can be seen over the whole video?",
    ],
}

#: region_qa attribute -> pattern its questions match (tested first to last).
ATTRIBUTE_PATTERNS: dict[str, re.Pattern[str]] = {
    "clothing": re.compile(r"\b(wear|wears|wearing|dressed|clothes|clothing)\b", re.I),
    "colour": re.compile(r"\bcolou?r\b", re.I),
    "position": re.compile(r"\b(where|part of the frame|positioned|located)\b", re.I),
    "category": re.compile(r"\b(kind|type|category)\b", re.I),
}


def attribute_asked(question: str) -> str | None:
    """Which attribute a region_qa question asks about, or None when it cannot be told."""
    for attribute, pattern in ATTRIBUTE_PATTERNS.items():
        if pattern.search(question):
            return attribute
    return None
