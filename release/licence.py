"""The licence a release declares to the Hugging Face Hub.

``--license ID`` sets it (an id of the Hub's list, https://huggingface.co/docs/hub/repositories-licenses).
Without it, it follows the released videos' ``licence`` values, since the annotations
are derived from them: when every video's licence maps to the same Hub id
(``CC BY-NC-SA 3.0`` → ``cc-by-nc-sa-3.0``; a trailing note in parentheses is ignored,
``Apache-2.0 (SAM 2 repository)`` → ``apache-2.0``), that id; when no video names one,
``unknown``; otherwise ``other``, with ``license_name`` (the one licence as a slug, or
``mixed-source-licences``) and ``license_details`` listing each licence with its number
of videos, also written to ``LICENSE.md`` (``license_link``), as the Hub asks for ``other``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The licence ids the Hub accepts in a card's ``license`` (its documented list).
HUB_LICENSES = frozenset(
    """apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0
    bigcode-openrail-m afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear c-uda cc
    cc0-1.0 cc-by-2.0 cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0
    cc-by-nc-4.0 cc-by-nd-4.0 cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0
    cdla-sharing-1.0 cdla-permissive-1.0 cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1
    agpl-3.0 gfdl gpl gpl-2.0 gpl-3.0 lgpl lgpl-2.1 lgpl-3.0 isc lppl-1.3c ms-pl mpl-2.0 odc-by odbl openrail++
    osl-3.0 postgresql ofl-1.1 ncsa unlicense zlib pddl lgpl-lr deepfloyd-if-license llama2 gemma unknown
    other""".split()
)
#: Spellings of a Hub id that normalising alone does not reach.
_ALIASES = {"cc0": "cc0-1.0", "cc-zero": "cc0-1.0", "apache-2": "apache-2.0", "apache2.0": "apache-2.0"}
LICENSE_FILE = "LICENSE.md"
UNKNOWN = "unknown"


def hub_license_id(text: str | None) -> str | None:
    """The Hub id a free-text licence names, or None (``"CC BY 4.0"`` → ``cc-by-4.0``)."""
    if not text:
        return None
    core = re.sub(r"\s*\([^)]*\)\s*$", "", text.strip())  # "Apache-2.0 (SAM 2 repository)"
    slug = re.sub(r"[\s_]+", "-", core.lower()).strip("-")
    slug = re.sub(r"-{2,}", "-", slug)
    slug = _ALIASES.get(slug, slug)
    return slug if slug in HUB_LICENSES and slug not in ("other", UNKNOWN) else None


def check_license(value: str) -> str:
    """``value`` when it is a Hub licence id, else ValueError."""
    if value not in HUB_LICENSES:
        raise ValueError(
            f"--license {value!r} is not a Hub licence id (e.g. cc-by-4.0, cc-by-nc-sa-4.0, apache-2.0, other; "
            "https://huggingface.co/docs/hub/repositories-licenses)"
        )
    return value


@dataclass(frozen=True)
class LicenceDecision:
    """What the card's front matter says about the licence, and why."""

    id: str
    given: bool  # set with --license (else derived from the videos)
    name: str | None = None  # license_name, with ``other``
    details: str | None = None  # license_details, with ``other``

    def front_matter(self) -> dict[str, Any]:
        out: dict[str, Any] = {"license": self.id}
        if self.id == "other":
            out |= {"license_name": self.name, "license_link": LICENSE_FILE, "license_details": self.details}
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "given": self.given, "name": self.name, "details": self.details}


def decide_licence(option: str | None, video_licences: Mapping[str, int]) -> LicenceDecision:
    """The release's licence from ``--license`` (or None) and the videos per ``licence`` value
    (``unknown`` for a video without one)."""
    counts = Counter({k: v for k, v in video_licences.items() if v})
    details = "; ".join(f"{text} ({n} video{'s' if n != 1 else ''})" for text, n in sorted(counts.items()))
    if option is not None and option != "other":
        return LicenceDecision(check_license(option), given=True)
    ids = {hub_license_id(text) if text != UNKNOWN else UNKNOWN for text in counts}
    if option is None and len(ids) == 1 and None not in ids:
        return LicenceDecision(ids.pop() or UNKNOWN, given=False)
    if option is None and not counts:
        return LicenceDecision(UNKNOWN, given=False)
    named = [text for text in counts if text != UNKNOWN]
    name = _slug(named[0]) if len(counts) == 1 and named else "mixed-source-licences"
    return LicenceDecision("other", given=option is not None, name=name, details=details)


def licence_file(decision: LicenceDecision, version: str) -> str:
    """``LICENSE.md`` of a release whose licence is ``other``."""
    return (
        f"# Licence of release {version}\n\n"
        "This release's annotations are derived from videos published under these terms "
        "(videos per licence; each video's own licence is the `licence` column of the `videos` table):\n\n"
        + "".join(f"- {part}\n" for part in (decision.details or "").split("; ") if part)
        + "\nUse each video, and what is derived from it, under its own licence.\n"
    )


def _slug(text: str) -> str:
    """A licence text as a ``license_name``: lower-case letters, digits, dots and dashes."""
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9.]+", "-", text.lower())).strip("-.") or "custom"
