"""The hand-labelled referring-expression fixture: real frames, true garment colours and
relations (``data/expressions_fixture.json``), and how expressions are scored on it.

Used by ``test_expressions_fixture.py`` and ``bench/bench_expressions.py``. Masks come
from the labelled boxes through the lite segmenter (the flow tracker's GrabCut on a box
prompt), on the real frames read from the assets folder; the entities are made by the
``DescribeEntities`` stage (lite) exactly as a pipeline makes them. Scoring reads only
what entity rows hold, so it also scores rows made by older code (a whole-body colour of
a person is scored as a claim about what the person wears, the most lenient reading).

What is scored (a statement is false when the labels contradict it):

- garment colours of people (each of upper / lower said, against the labelled set);
- object colours;
- every relation listed in the entities' attributes, against the per-frame labels of
  the pair: true when it holds on at least ``SHARE`` of the labelled frames they share;
- each referring expression: its colour words (garments, or object colour), any
  relation it states, and any whole-body colour word for a person (always unfit).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tubelet.annotators.language.entities import DescribeEntities
from tubelet.annotators.tracking.flow import FlowPropagator
from tubelet.engine.task import VideoTask
from tubelet.engine.video import VideoReader
from tubelet.schemas import Entity, Tubelet, TubeletFrame
from tubelet.schemas.rle import encode_mask

FIXTURE = Path(__file__).parent / "data" / "expressions_fixture.json"
#: A relation is true of a pair when the labels say it holds on this share of their frames.
SHARE = 0.8
#: Label value -> relation name it makes true (of a to b).
_HORIZONTAL = {"left": "left of", "right": "right of"}
#: The basic colour names (``colours.PALETTE``), written out so that rows of older code score too.
_COLOUR_WORDS = "black|white|grey|red|orange|yellow|green|blue|purple|pink|brown"


def load_fixture(path: Path = FIXTURE) -> dict[str, Any]:
    return json.loads(path.read_text())


def person_label(label: dict[str, Any]) -> bool:
    return "upper" in label


@dataclass
class LabelledVideo:
    """One video of the fixture as a task with one tubelet per labelled object."""

    task: VideoTask
    labels: dict[str, dict[str, Any]]  # tubelet id -> object label
    names: dict[str, str]  # tubelet id -> the label's name ("woman")
    relations: list[dict[str, Any]]


def labelled_video(assets: Path, video: dict[str, Any]) -> LabelledVideo:
    """The fixture video as a task: tubelets of the labelled boxes on the labelled frames,
    masks from GrabCut on each box (the lite segmenter), frame times from the fps."""
    uri = str(assets / video["video"])
    frames = [int(f) for f in video["frames"]]
    with VideoReader(uri) as reader:
        images = reader.frames(frames)
    masks: dict[tuple[str, int], np.ndarray | None] = {}
    segmenter = FlowPropagator(max_side=640)  # the lite tracker's working size
    for idx, image in zip(frames, images):
        segmenter.start(image[None], [0])
        names = list(video["objects"])
        for k, name in enumerate(names):
            segmenter.add_prompt(0, k, box=video["objects"][name]["boxes"][str(idx)])
        [(_, regions)] = list(segmenter.propagate(0, 0))
        for k, name in enumerate(names):
            region = regions.get(k)
            masks[name, idx] = None if region is None or region.mask is None else np.asarray(region.mask, bool)
    task = VideoTask(video_id=video["video_id"], uri=uri, fps=None)
    labels, names_by_id = {}, {}
    for k, (name, label) in enumerate(video["objects"].items()):
        tid = f"{video['video_id']}:fixture:{k}"
        rows = []
        for idx in frames:
            mask = masks[name, idx]
            rows.append(
                TubeletFrame(
                    frame_idx=idx,
                    t_s=idx / video["fps"],
                    box_xyxy=[float(v) for v in label["boxes"][str(idx)]],
                    mask_rle=None if mask is None else encode_mask(mask),
                )
            )
        task.tubelets.append(
            Tubelet(
                tubelet_id=tid,
                video_id=video["video_id"],
                category=label["category"],
                source="fixture",
                track_id=str(k),
                fps=video["fps"],
                width=video["width"],
                height=video["height"],
                frames=rows,
            )
        )
        labels[tid], names_by_id[tid] = label, name
    return LabelledVideo(task, labels, names_by_id, video["relations"])


def describe(video: LabelledVideo) -> list[Entity]:
    """Lite entities of the fixture video, every labelled frame used for colour."""
    stage = DescribeEntities(n_frames=len(video.task.tubelets[0].frames))
    stage.describe(video.task)
    return list(video.task.entities)


# ---------------------------------------------------------------- scoring


@dataclass
class Score:
    """Counts over the fixture; ``false`` lists what was wrong, for reading."""

    garments_said: int = 0
    garments_true: int = 0
    garment_slots: int = 0
    object_colours_said: int = 0
    object_colours_true: int = 0
    relations_said: int = 0
    relations_true: int = 0
    expressions: int = 0
    expressions_false: int = 0
    whole_body_person_colours: int = 0
    false: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    def add(self, other: Score) -> None:
        for key, value in vars(other).items():
            if isinstance(value, int):
                setattr(self, key, getattr(self, key) + value)
        self.false += other.false
        self.texts += other.texts

    def figures(self) -> dict[str, Any]:
        def ratio(a: int, b: int) -> float | None:
            return round(a / b, 3) if b else None

        return {
            "garment_colour_accuracy": ratio(self.garments_true, self.garments_said),
            "garment_colours_said": f"{self.garments_said}/{self.garment_slots}",
            "object_colour_accuracy": ratio(self.object_colours_true, self.object_colours_said),
            "relation_accuracy": ratio(self.relations_true, self.relations_said),
            "relations_said": self.relations_said,
            "expressions_with_a_false_statement": ratio(self.expressions_false, self.expressions),
            "expressions": self.expressions,
            "whole_body_person_colours": self.whole_body_person_colours,
        }


def _garments(entity: Entity) -> dict[str, str | None]:
    """What the rows say a person wears; older rows: the whole-body colour, as both."""
    worn = entity.attributes.get("garments")
    if isinstance(worn, dict):
        return {"upper": worn.get("upper"), "lower": worn.get("lower")}
    colour = entity.attributes.get("colour")
    return {"whole": colour} if colour else {}


def _colour_true(label: dict[str, Any], part: str, colour: str) -> bool:
    if part == "whole":  # older rows: lenient, any garment's colour counts
        return colour in set(label["upper"]) | set(label["lower"])
    return colour in label[part]


def relation_truth(video: LabelledVideo, a: str, b: str, relation: str) -> bool | None:
    """Whether the labels make ``relation`` (of label name ``a`` to ``b``) true on
    ``SHARE`` of their labelled frames; None when the fixture does not label it."""
    for pair in video.relations:
        if {pair["a"], pair["b"]} != {a, b}:
            continue
        flipped = pair["a"] != a
        if relation in ("left of", "right of"):
            values = list(pair["horizontal"].values())
            want = relation if not flipped else {"left of": "right of", "right of": "left of"}[relation]
            hits = sum(_HORIZONTAL.get(v) == want for v in values)
        elif relation == "larger than":
            values = list(pair["size"].values())
            hits = sum(v == ("smaller" if flipped else "larger") for v in values)
        else:
            return None
        return hits >= SHARE * len(values)
    return None


def score_video(video: LabelledVideo, entities: list[Entity]) -> Score:
    score = Score()
    by_tid = {e.tubelet_id: e for e in entities}
    for tid, label in video.labels.items():
        entity = by_tid.get(tid)
        name = video.names[tid]
        if entity is None:
            continue
        if person_label(label):
            score.garment_slots += 2
            for part, colour in _garments(entity).items():
                if colour is None:
                    continue
                score.garments_said += 1
                ok = _colour_true(label, part, colour)
                score.garments_true += ok
                score.whole_body_person_colours += part == "whole"
                if not ok:
                    score.false.append(f"{name}: {part} {colour!r}, labelled {label.get(part, label['upper'])}")
        else:
            colour = entity.attributes.get("colour")
            if colour:
                score.object_colours_said += 1
                ok = colour in label["colour"]
                score.object_colours_true += ok
                if not ok:
                    score.false.append(f"{name}: colour {colour!r}, labelled {label['colour']}")
        for rel in entity.attributes.get("relations") or []:
            truth = relation_truth(video, name, video.names.get(rel["tubelet_id"], ""), rel["relation"])
            if truth is None:
                continue
            score.relations_said += 1
            score.relations_true += truth
            if not truth:
                score.false.append(f"{name} {rel['relation']} {video.names[rel['tubelet_id']]}: not true")
        score.expressions += 1
        problems = expression_problems(video, entity, label)
        score.expressions_false += bool(problems)
        score.texts.append(f"{name}: {entity.referring_expression!r}" + (f"  FALSE: {problems}" if problems else ""))
    return score


def expression_problems(video: LabelledVideo, entity: Entity, label: dict[str, Any]) -> list[str]:
    """The false or unfit statements of one referring expression."""
    text = (entity.referring_expression or "").lower()
    problems = []
    if person_label(label):
        for colour, part in re.findall(rf"\b({_COLOUR_WORDS})\s+(top|bottoms)\b", text):
            key = "upper" if part == "top" else "lower"
            if colour not in label[key]:
                problems.append(f"{colour} {part}")
        for colour in re.findall(rf"\bdressed in ({_COLOUR_WORDS})\b", text):
            if colour not in label["upper"] or colour not in label["lower"]:
                problems.append(f"dressed in {colour}")
        noun = re.escape(entity.category.lower())
        for colour in re.findall(rf"\b({_COLOUR_WORDS})\s+(?:\w+\s+)?{noun}\b", text):
            problems.append(f"whole-body colour {colour!r}")
    else:
        for colour in re.findall(rf"\b({_COLOUR_WORDS})\b", text.split(",")[0]):
            if colour not in label["colour"]:
                problems.append(f"colour {colour}")
    categories = {t.category: video.names[t.tubelet_id] for t in video.task.tubelets}
    for relation, other in re.findall(r"\b(left of|right of|larger than|above|below) the ([\w ]+?)(?:,|$)", text):
        truth = relation_truth(video, video.names[entity.tubelet_id], categories.get(other, ""), relation)
        if truth is False:
            problems.append(f"{relation} the {other}")
    return problems


def score_fixture(assets: Path, fixture: dict[str, Any] | None = None) -> Score:
    """Describe every fixture video with the lite stage and score the rows."""
    total = Score()
    for video in (fixture or load_fixture())["videos"]:
        labelled = labelled_video(assets, video)
        total.add(score_video(labelled, describe(labelled)))
    return total
