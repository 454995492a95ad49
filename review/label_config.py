"""The Label Studio labeling configuration generated from a dataset.

One config per project, built from what the pushed videos hold: the categories of their
tubelets (``VideoRectangle`` + ``Labels``), the labels of their events
(``TimelineLabels``), per-region text boxes for each tubelet's id (read-only) and
referring expression, both listed under the track in the Regions panel so a reviewer
tells ``dog #1`` from ``dog #4`` there, and a multiple choice of the video's instructions
to reject. Per-video values come from the
task's data (``$fps``, ``$instructions``), so one project serves videos of any frame
rate: Label Studio assumes 24 fps when ``frameRate`` is not given, which silently shifts
every frame of a 25 or 30 fps video.

Control names are fixed (``NAMES``): pushing writes results under them and pulling reads
them back, so they are the contract between the two halves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr


@dataclass(frozen=True)
class ControlNames:
    """The ``name`` of each tag in the generated config."""

    video: str = "video"
    box: str = "box"
    category: str = "category"
    events: str = "events"
    track: str = "track"  # the tubelet's short and full id, shown in the Regions panel (read-only)
    expression: str = "expression"
    caption: str = "caption"
    rejected: str = "rejected_instructions"


NAMES = ControlNames()

#: Data keys of a task the config refers to.
DATA_VIDEO = "video"
DATA_FPS = "fps"
DATA_INSTRUCTIONS = "instructions"

#: Colours cycled over labels so neighbouring labels differ.
_PALETTE = (
    "#e6194b",
    "#3cb44b",
    "#4363d8",
    "#f58231",
    "#911eb4",
    "#42d4f4",
    "#f032e6",
    "#bfef45",
    "#469990",
    "#9a6324",
)


def labeling_config(categories: Iterable[str], event_labels: Iterable[str], *, video_height: int = 480) -> str:
    """The labeling config XML for a project whose videos hold ``categories`` and
    ``event_labels`` (both deduplicated and sorted here, so the config, and with it the
    project, only changes when the label sets do)."""
    cats = sorted({c for c in categories if c})
    labels = sorted({label for label in event_labels if label})
    lines = [
        "<View>",
        '  <Header value="$title"/>',
        f'  <Video name={quoteattr(NAMES.video)} value="${DATA_VIDEO}" frameRate="${DATA_FPS}" height="{int(video_height)}"/>',
        f"  <VideoRectangle name={quoteattr(NAMES.box)} toName={quoteattr(NAMES.video)}/>",
        f"  <Labels name={quoteattr(NAMES.category)} toName={quoteattr(NAMES.video)}>",
        *(_label(c, i) for i, c in enumerate(cats)),
        "  </Labels>",
    ]
    if labels:
        lines += [
            f"  <TimelineLabels name={quoteattr(NAMES.events)} toName={quoteattr(NAMES.video)}>",
            *(_label(label, i + len(cats)) for i, label in enumerate(labels)),
            "  </TimelineLabels>",
        ]
    lines += [
        # displayMode="region-list": shown (and the expression edited) in each track's row
        # of the Regions panel; a read-only id can be neither changed nor added to
        f'  <TextArea name={quoteattr(NAMES.track)} toName={quoteattr(NAMES.video)} perRegion="true"'
        ' displayMode="region-list" editable="false" maxSubmissions="1" rows="1"/>',
        '  <Header value="Referring expression of the selected track" size="6"/>',
        f'  <TextArea name={quoteattr(NAMES.expression)} toName={quoteattr(NAMES.video)} perRegion="true"'
        ' displayMode="region-list" editable="true" maxSubmissions="1" rows="2"/>',
        '  <Header value="Caption of the selected track" size="6"/>',
        f'  <TextArea name={quoteattr(NAMES.caption)} toName={quoteattr(NAMES.video)} perRegion="true"'
        ' editable="true" maxSubmissions="1" rows="2"/>',
        '  <Header value="Instructions: tick the ones to reject" size="6"/>',
        f'  <Choices name={quoteattr(NAMES.rejected)} toName={quoteattr(NAMES.video)} choice="multiple"'
        f' value="${DATA_INSTRUCTIONS}" allowNested="false"/>',
        "</View>",
    ]
    return "\n".join(lines) + "\n"


def _label(value: str, index: int) -> str:
    return f"    <Label value={quoteattr(value)} background={quoteattr(_PALETTE[index % len(_PALETTE)])}/>"
