"""DescribeEntities: one ``Entity`` per tubelet — category, general noun, a referring
expression unique within the video, attributes and (with a VLM) a caption.

Two modes, one output:

- ``lite`` (no model): attributes are measured (``tubelet.annotators.language.attributes``) and
  the expression is built from them, e.g. "the red car on the left";
- a backend kind (``transformers``, ``openai``): each tubelet is shown to the VLM as
  visual prompts and answers ``prompts.ENTITY_DESCRIBE``'s schema through
  ``generate_structured``; a tubelet whose answers stay malformed is a ``Reject``
  (item = tubelet id) and gets no entity. Measured attributes are kept next to the
  model's.

Either way expressions are made unique within the video. Lite: same-category entities
get attributes added in ``ATTRIBUTE_ORDER`` — each only if it rules out another entity —
and, when nothing tells them apart, an ordinal ("the second person from the left").
VLM: duplicated expressions are asked again with the competitors in the prompt, then
measured attributes are appended to what is still duplicated. Each entity records how
its expression was made unique in ``attributes["expression"]``.

``Entity.category`` is always the tubelet's category, so the tables share one
vocabulary; the model's own word goes to ``attributes["described_category"]``.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from tubelet.annotators.language.attributes import AttributeConfig, measure_video
from tubelet.annotators.language.backends.base import BACKENDS, VLMBackend, VLMRequest, make_backend
from tubelet.annotators.language.backends.lifecycle import ModelLifecycle
from tubelet.annotators.language.backends.structured import generate_structured
from tubelet.annotators.language.colours import colour_name
from tubelet.annotators.language.comparisons import rank_share
from tubelet.annotators.language.garments import garment_phrase
from tubelet.annotators.language.prompts import ENTITY_DESCRIBE, ENTITY_DISAMBIGUATE, PromptTemplate, get_template
from tubelet.annotators.language.visual_prompt import VisualPrompt, VisualPromptConfig, frames_needed, visual_prompt
from tubelet.engine.resources import Resources
from tubelet.engine.stage import Stage
from tubelet.engine.task import VideoTask
from tubelet.engine.video import VideoReader
from tubelet.schemas import Entity, Tubelet

log = logging.getLogger(__name__)

#: What lite entities record as ``prompt_version``: the expression grammar's version.
LITE_VERSION = "entity_lite@2"
LITE_MODEL_ID = "lite"

#: Attributes tried, in order, to tell apart entities of one category.
ATTRIBUTE_ORDER = ("colour", "position", "size", "motion", "relation")

#: COCO classes -> a general noun (anything else is its own general noun).
GENERALIZED_NOUNS: dict[str, str] = {
    "person": "person",
    **dict.fromkeys(("bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat"), "vehicle"),
    **dict.fromkeys(("bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe"), "animal"),
    **dict.fromkeys(
        ("banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake"), "food"
    ),
    **dict.fromkeys(("chair", "couch", "bed", "dining table", "toilet", "bench"), "furniture"),
    **dict.fromkeys(
        (
            "tv",
            "laptop",
            "mouse",
            "remote",
            "keyboard",
            "cell phone",
            "microwave",
            "oven",
            "toaster",
            "refrigerator",
            "hair drier",
        ),
        "appliance",
    ),
    **dict.fromkeys(
        (
            "frisbee",
            "skis",
            "snowboard",
            "sports ball",
            "kite",
            "baseball bat",
            "baseball glove",
            "skateboard",
            "surfboard",
            "tennis racket",
        ),
        "sports equipment",
    ),
    **dict.fromkeys(("bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl"), "tableware"),
    **dict.fromkeys(("traffic light", "fire hydrant", "stop sign", "parking meter"), "street object"),
    **dict.fromkeys(("backpack", "umbrella", "handbag", "tie", "suitcase"), "accessory"),
}

_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")
_DIRECTION_WORDS = {
    "up-left": "up and left",
    "up-right": "up and right",
    "down-left": "down and left",
    "down-right": "down and right",
}


def generalized_noun(category: str) -> str:
    """A general noun for ``category``: person, animal, vehicle, ... for COCO classes,
    the category itself otherwise."""
    key = category.strip().lower()
    return GENERALIZED_NOUNS.get(key, key)


def normalise_expression(text: str) -> str:
    """The form expressions are compared in: lower case, no punctuation, no leading article."""
    words = re.sub(r"[^\w\s-]", " ", text.lower()).split()
    while words and words[0] in ("the", "a", "an"):
        words = words[1:]
    return " ".join(words)


def ordinal(n: int) -> str:
    """1 -> "first", 11 -> "11th"."""
    if n <= len(_ORDINALS):
        return _ORDINALS[n - 1]
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# -- lite expressions --------------------------------------------------------------


def _value(attrs: Mapping[str, Any], key: str) -> Any:
    """The comparable value of one attribute (None when unknown): the words it is said
    with, so that two entities said alike are alike. A person's colour is what they wear
    ("in a white top"); relations are a set of ``(relation, other tubelet id)``."""
    if key == "colour":
        garments = attrs.get("garments")
        if garments is not None:  # a person: never a colour of the whole body
            return garment_phrase(garments.get("upper"), garments.get("lower"))
        return attrs.get("colour")
    if key == "size":
        return attrs.get("size")
    if key == "motion":
        direction, depth = attrs.get("direction"), attrs.get("depth")
        return _motion_phrase(direction or "still", depth) if direction or depth else None
    if key == "position":
        pos = attrs.get("position")
        return _position_phrase(pos["vertical"], pos["horizontal"]) if pos else None
    if key == "relation":
        return {(r["relation"], r["tubelet_id"]) for r in attrs.get("relations") or []} or None
    raise KeyError(key)


def _position_phrase(vertical: str | None, horizontal: str | None) -> str:
    """ "at the top left", "on the left", "at the top", "in the centre"; a part that is
    None (it did not hold on most frames) is left out (the attributes never leave only a
    central part: "in the middle" alone says nothing)."""
    if (vertical, horizontal) == ("middle", "centre"):
        return "in the centre"
    if vertical in ("middle", None):
        return f"on the {horizontal}"
    if horizontal in ("centre", None):
        return f"at the {vertical}"
    return f"at the {vertical} {horizontal}"


def _motion_phrase(direction: str, depth: str | None = None) -> str:
    """ "moving left", "moving left, away from the camera", "moving towards the camera",
    "that stays still"."""
    along = {"away": "away from the camera", "closer": "towards the camera"}.get(depth or "")
    if direction == "still":
        return f"moving {along}" if along else "that stays still"
    across = f"moving {_DIRECTION_WORDS.get(direction, direction)}"
    return f"{across}, {along}" if along else across


@dataclass
class Choice:
    """The attributes chosen to pick out one entity among ``confusers``."""

    keys: list[str] = field(default_factory=list)
    relation: tuple[str, str] | None = None  # (relation, other tubelet id)
    ordinal: str | None = None  # e.g. "second from the left"
    confusers: list[str] = field(default_factory=list)  # still matching after the attributes


def choose_attributes(
    tid: str,
    group: Sequence[str],
    measured: Mapping[str, Mapping[str, Any]],
    relatable: set[str],
    base: Sequence[str] = ("colour",),
    tubelets: Mapping[str, Tubelet] | None = None,
    share: float = 0.8,
) -> Choice:
    """Attributes that tell tubelet ``tid`` apart from the other tubelets of ``group``.

    ``base`` attributes are always used (when known); the others of ``ATTRIBUTE_ORDER``
    are added in order, each only if it rules out a remaining confuser. Relations only
    name tubelets in ``relatable`` (ones a phrase can name: the only one of their
    category). When confusers remain, ``ordinal`` places ``tid`` among ``group`` (see
    ``_ordinal_in``; ``tubelets`` by id let it check the order frame by frame).
    """
    mine = measured[tid]
    confusers = [o for o in group if o != tid]
    choice = Choice()
    for key in list(base) + [k for k in ATTRIBUTE_ORDER if k not in base]:
        value = _value(mine, key)
        if value is None or (not confusers and key not in base):
            continue
        if key == "relation":
            options = sorted(r for r in value if r[1] in relatable)
            if not options:
                continue
            # the relation that rules out the most confusers (first in order on ties)
            best = min(options, key=lambda r: sum(r in (_value(measured[o], key) or ()) for o in confusers))
            remaining = [o for o in confusers if best in (_value(measured[o], key) or ())]
            if len(remaining) < len(confusers):
                choice.keys.append(key)
                choice.relation = best
                confusers = remaining
            continue
        remaining = [o for o in confusers if _value(measured[o], key) == value]
        if key in base or len(remaining) < len(confusers):
            choice.keys.append(key)
            confusers = remaining
    if confusers:
        choice.ordinal = _ordinal_in(tid, group, measured, tubelets, share)
        choice.confusers = confusers
    return choice


def _ordinal_in(
    tid: str,
    group: Sequence[str],
    measured: Mapping[str, Mapping[str, Any]],
    tubelets: Mapping[str, Tubelet] | None = None,
    share: float = 0.8,
) -> str:
    """Where ``tid`` is among ``group``: "second from the left" (or "from the top" when
    the group spreads vertically) by median centre. With ``tubelets``, that order is a
    statement checked on the frames where the whole group is visible: when it holds on
    fewer than ``share`` of them, the other axis is tried, then the order of first
    appearance ("second to appear"), which is true whenever their first frames differ."""
    centres = {o: measured[o].get("centre") or [0.5, 0.5] for o in group}
    xs = [c[0] for c in centres.values()]
    ys = [c[1] for c in centres.values()]
    axes = [(1, "top"), (0, "left")] if np.ptp(ys) > np.ptp(xs) else [(0, "left"), (1, "top")]
    spatial = []
    for axis, side in axes:
        order = sorted(group, key=lambda o: (centres[o][axis], centres[o][1 - axis], o))
        rank = order.index(tid)
        spatial.append(f"{ordinal(rank + 1)} from the {side}")
        if tubelets is None:
            return spatial[0]
        held, n = rank_share(tid, [tubelets[o] for o in group], axis, rank)
        if n and held >= share:
            return spatial[-1]
    assert tubelets is not None
    firsts = {o: min(f.frame_idx for f in tubelets[o].visible_frames) for o in group}
    if len(set(firsts.values())) == len(group):
        order = sorted(group, key=lambda o: firsts[o])
        return f"{ordinal(order.index(tid) + 1)} to appear"
    return spatial[0]  # nothing better is true: unique, though not checked


def render_expression(noun: str, attrs: Mapping[str, Any], choice: Choice, names: Mapping[str, str]) -> str:
    """The phrase for ``choice``: "the small red car on the left, moving right, left of the
    dog", "the person in a white top and blue bottoms, on the left"; with an ordinal, "the second car from the left" (its attributes are left out:
    the ordinal alone picks it out). ``names`` maps tubelet ids to their category."""
    if choice.ordinal:
        first, _, rest = choice.ordinal.partition(" ")
        return f"the {first} {noun} {rest}"
    pre, post = [], []
    if "size" in choice.keys:
        pre.append(attrs["size"])
    worn = _value(attrs, "colour") if attrs.get("garments") is not None else None
    if "colour" in choice.keys and worn:
        post.append(worn)  # "the person in a white top and blue bottoms"
    colour = attrs.get("colour")
    # "red square" needs no "red" again
    if "colour" in choice.keys and worn is None and colour and colour not in noun.lower().split():
        pre.append(colour)
    for key in ("position", "motion"):
        if key in choice.keys:
            post.append(_value(attrs, key))
    if choice.relation is not None:
        relation, other = choice.relation
        post.append(f"{relation} the {names[other]}")
    text = " ".join(["the", *pre, noun])
    if post:
        text += " " + post[0] + "".join(f", {p}" for p in post[1:])
    return text


def lite_expressions(
    tubelets: Sequence[Tubelet],
    measured: Mapping[str, Mapping[str, Any]],
    base: Sequence[str] = ("colour",),
    share: float = 0.8,
) -> dict[str, tuple[str, dict[str, Any]]]:
    """A referring expression per tubelet id, unique within ``tubelets``, with a record of
    how it was made: ``{"unique", "method" ("measured" | "ordinal"), "used"}`` and the
    ``relation`` it states, if any. Every statement in it holds on ``share`` of the frames
    it is about (``measured`` holds only such statements; ordinals are checked here)."""
    by_category: dict[str, list[str]] = defaultdict(list)
    for t in tubelets:
        by_category[t.category].append(t.tubelet_id)
    names = {t.tubelet_id: t.category for t in tubelets}
    relatable = {ids[0] for ids in by_category.values() if len(ids) == 1}
    by_id = {t.tubelet_id: t for t in tubelets}
    out = {}
    for t in tubelets:
        choice = choose_attributes(t.tubelet_id, by_category[t.category], measured, relatable, base, by_id, share)
        text = render_expression(t.category, measured[t.tubelet_id], choice, names)
        record: dict[str, Any] = {
            "method": "ordinal" if choice.ordinal else "measured",
            "used": choice.keys if not choice.ordinal else ["ordinal"],
        }
        if choice.relation is not None and not choice.ordinal:
            record["relation"] = {"relation": choice.relation[0], "tubelet_id": choice.relation[1]}
        out[t.tubelet_id] = (text, record)
    _mark_unique(out)
    return out


def _mark_unique(out: dict[str, tuple[str, dict[str, Any]]]) -> None:
    counts = Counter(normalise_expression(text) for text, _ in out.values())
    for text, record in out.values():
        record["unique"] = counts[normalise_expression(text)] == 1


def measured_suffix(
    tid: str,
    group: Sequence[str],
    measured: Mapping[str, Mapping[str, Any]],
    names: Mapping[str, str],
    tubelets: Mapping[str, Tubelet] | None = None,
    share: float = 0.8,
) -> tuple[str, list[str]]:
    """Words from measured attributes telling ``tid`` apart from ``group`` (e.g. "red, on
    the left", "in a white top", or "second from the left"), for appending to a model's
    expression."""
    relatable = {o for o, n in names.items() if sum(m == n for m in names.values()) == 1}
    choice = choose_attributes(tid, group, measured, relatable, (), tubelets, share)
    if choice.ordinal:
        return choice.ordinal, ["ordinal"]
    text = render_expression("", measured[tid], choice, names)  # "the  red on the left"
    words = text.removeprefix("the").strip()
    return re.sub(r"\s+", " ", words), choice.keys


# -- the stage ---------------------------------------------------------------------


@dataclass
class DescribeEntities(ModelLifecycle, Stage):
    """One ``Entity`` per tubelet (see the module docstring).

    ``mode``: ``"lite"`` (measured attributes, no model) or ``"vlm"``: the ``backend``
    kind of ``BACKENDS`` (``"transformers"``, ``"openai"``) built with ``backend_options``,
    as ``ActionTimeline`` takes them.
    ``n_frames``: frames per tubelet for visual prompts and colour. ``visual`` and
    ``attribute_options``: fields of ``VisualPromptConfig`` / ``AttributeConfig``.
    ``decode_long_side``: frames are decoded with their longest side at most this (None:
    native). ``retries``: re-asks of a malformed answer; ``disambiguate``: ask the model
    again about duplicated expressions before appending measured attributes.
    ``base_attributes``: lite attributes always in the expression.
    """

    name: ClassVar[str] = "describe_entities"
    mode: str = "lite"
    backend: str = "openai"
    backend_options: dict[str, Any] = field(default_factory=dict)
    n_frames: int = 4
    visual: dict[str, Any] = field(default_factory=dict)
    attribute_options: dict[str, Any] = field(default_factory=dict)
    decode_long_side: int | None = 720
    template: str = ENTITY_DESCRIBE.name
    disambiguate_template: str = ENTITY_DISAMBIGUATE.name
    retries: int = 2
    max_new_tokens: int = 256
    disambiguate: bool = True
    base_attributes: tuple[str, ...] = ("colour",)
    resources: Resources = Resources()

    def __post_init__(self) -> None:
        if self.mode not in ("lite", "vlm"):
            raise ValueError(f"DescribeEntities mode must be 'lite' or 'vlm', got {self.mode!r}")
        if self.mode == "vlm" and self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {sorted(BACKENDS)}, got {self.backend!r}")
        self.base_attributes = tuple(self.base_attributes)
        unknown = [k for k in self.base_attributes if k not in ATTRIBUTE_ORDER]
        if unknown:
            raise ValueError(f"base_attributes {unknown} not in {ATTRIBUTE_ORDER}")
        # Build configs (and the backend object, not its model) now: a bad option fails
        # at configuration time, not on a worker.
        self._visual = VisualPromptConfig(n_frames=self.n_frames, **self.visual)
        self._attrs = AttributeConfig(**self.attribute_options)
        self._template: PromptTemplate = get_template(self.template)
        self._reask_template: PromptTemplate = get_template(self.disambiguate_template)
        self._backend: VLMBackend | None = (
            None if self.mode == "lite" else make_backend(self.backend, self.backend_options)
        )
        self._ready = False

    @property
    def model_id(self) -> str | None:
        return LITE_MODEL_ID if self._backend is None else self._backend.model_id

    def process(self, batch: list[VideoTask]) -> list[VideoTask]:
        self.check_ready()
        for task in batch:
            self.describe(task)
        return batch

    # -- per video ---------------------------------------------------------------------
    def describe(self, task: VideoTask) -> None:
        """Append the entities of ``task``'s tubelets (and rejects for those that fail)."""
        tubelets = [t for t in task.tubelets if t.visible_frames]
        for t in task.tubelets:
            if not t.visible_frames:
                task.reject(self.name, t.tubelet_id, "tubelet has no visible frame to describe")
        if not tubelets:
            return
        frames = self._read_frames(task, tubelets)
        measured = measure_video(tubelets, frames, self.n_frames, self._attrs)
        if self._backend is None:
            entities = self._lite(tubelets, measured)
        else:
            entities = self._vlm(task, tubelets, measured, frames)
        task.entities.extend(entities)

    def _read_frames(self, task: VideoTask, tubelets: list[Tubelet]) -> dict[int, np.ndarray]:
        """The sampled frames of all tubelets, decoded once for the video."""
        indices = frames_needed(tubelets, self.n_frames)
        fps = task.fps or (task.video.fps if task.video and task.video.fps_source == "manifest" else None)
        width, height = tubelets[0].width, tubelets[0].height
        size = None
        if self.decode_long_side and max(width, height) > self.decode_long_side:
            scale = self.decode_long_side / max(width, height)
            size = (max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2))
        with VideoReader(task.uri, fps=fps) as reader:
            return dict(zip(indices, reader.frames(indices, size=size)))

    def _entity(self, t: Tubelet, **values: Any) -> Entity:
        return Entity(
            entity_id=f"{t.tubelet_id}:entity",
            video_id=t.video_id,
            tubelet_id=t.tubelet_id,
            category=t.category,
            **values,
        )

    def _lite(self, tubelets: list[Tubelet], measured: dict[str, dict[str, Any]]) -> list[Entity]:
        expressions = lite_expressions(tubelets, measured, self.base_attributes, self._attrs.relation_share)
        out = []
        for t in tubelets:
            text, record = expressions[t.tubelet_id]
            attrs = {**measured[t.tubelet_id], "expression": record}
            out.append(
                self._entity(
                    t,
                    referring_expression=text,
                    generalized_noun=generalized_noun(t.category),
                    attributes=attrs,
                    caption=None,
                    model_id=LITE_MODEL_ID,
                    prompt_version=LITE_VERSION,
                )
            )
        return out

    # -- VLM mode ----------------------------------------------------------------------
    def _marker(self) -> str:
        return colour_name(np.array([self._visual.colour], dtype=np.uint8)) or "coloured"

    def _vlm(
        self,
        task: VideoTask,
        tubelets: list[Tubelet],
        measured: dict[str, dict[str, Any]],
        frames: dict[int, np.ndarray],
    ) -> list[Entity]:
        prompts = {t.tubelet_id: visual_prompt(t, frames, self._visual) for t in tubelets}
        counts = Counter(t.category for t in tubelets)
        requests = []
        for t in tubelets:
            others = counts.copy()
            others[t.category] -= 1
            listed = ", ".join(f"{n} {c}" for c, n in sorted(others.items()) if n) or "none"
            start, end = measured[t.tubelet_id]["visible_s"]
            text = self._template.render(
                marker=self._marker(),
                image_guide=prompts[t.tubelet_id].describe(),
                category_hint=t.category,
                start_s=start,
                end_s=end,
                others=listed,
            )
            requests.append(
                VLMRequest(
                    request_id=t.tubelet_id,
                    prompt=text,
                    system=self._template.system,
                    images=prompts[t.tubelet_id].images,
                    max_new_tokens=self.max_new_tokens,
                )
            )
        results = generate_structured(
            self._backend,
            requests,
            self._template.schema or {},  # type: ignore[arg-type]
            retries=self.retries,
        )
        for failure in results.failures:
            task.reject(
                self.name,
                failure.request_id,
                f"no valid {self._template.id} answer after {failure.asks} asks: {failure.reason}",
            )
        answered = [t for t in tubelets if t.tubelet_id in results.values]
        entities = {}
        for t in answered:
            value = results.values[t.tubelet_id]
            attrs = {
                **measured[t.tubelet_id],
                "described": [a.strip() for a in value["attributes"]],
                "described_category": value["category"].strip().lower(),
                "expression": {"method": "model"},
            }
            entities[t.tubelet_id] = self._entity(
                t,
                referring_expression=value["referring_expression"].strip(),
                generalized_noun=value["generalized_noun"].strip().lower() or generalized_noun(t.category),
                attributes=attrs,
                caption=value["caption"].strip(),
                model_id=results.responses[t.tubelet_id].model_id,
                prompt_version=self._template.id,
            )
        self._make_unique(answered, entities, measured, prompts)
        return [entities[t.tubelet_id] for t in answered]

    def _make_unique(
        self,
        tubelets: list[Tubelet],
        entities: dict[str, Entity],
        measured: dict[str, dict[str, Any]],
        prompts: dict[str, VisualPrompt],
    ) -> None:
        """Re-ask about duplicated expressions, then append measured words to what is
        still duplicated; record the outcome in ``attributes["expression"]``."""

        duplicated = _duplicates(entities)
        if duplicated and self.disambiguate:
            requests = []
            for tid, group in duplicated.items():
                e = entities[tid]
                competing = "; ".join(
                    f'"{entities[o].referring_expression}" ({entities[o].caption})' for o in group if o != tid
                )
                text = self._reask_template.render(
                    marker=self._marker(),
                    image_guide=prompts[tid].describe(),
                    expression=e.referring_expression,
                    competing=competing,
                )
                requests.append(
                    VLMRequest(
                        request_id=tid,
                        prompt=text,
                        system=self._reask_template.system,
                        images=prompts[tid].images,
                        max_new_tokens=self.max_new_tokens,
                    )
                )
            results = generate_structured(
                self._backend,
                requests,  # type: ignore[arg-type]
                self._reask_template.schema or {},
                retries=self.retries,
            )
            for tid, value in results.values.items():
                e = entities[tid]
                e.referring_expression = value["referring_expression"].strip()
                e.prompt_version = f"{self._template.id}+{self._reask_template.id}"
                e.attributes["expression"] = {"method": "model-reask"}
            for failure in results.failures:  # the first answer stands; measured words follow
                log.info("disambiguation of %s failed: %s", failure.request_id, failure.reason)
            duplicated = _duplicates(entities)
        names = {t.tubelet_id: t.category for t in tubelets}
        by_id = {t.tubelet_id: t for t in tubelets}
        share = self._attrs.relation_share
        suffixes = {
            tid: measured_suffix(tid, group, measured, names, by_id, share) for tid, group in duplicated.items()
        }
        for tid, (words, keys) in suffixes.items():
            e = entities[tid]
            if words:
                e.referring_expression = f"{e.referring_expression} ({words})"
            e.attributes["expression"] = {
                "method": "model+ordinal" if keys == ["ordinal"] else "model+measured",
                "used": keys,
            }
        final = _duplicates(entities)
        for tid, e in entities.items():
            e.attributes["expression"]["unique"] = tid not in final


def _duplicates(entities: Mapping[str, Entity]) -> dict[str, list[str]]:
    """Tubelet id -> the ids (itself included) sharing its normalised expression, for
    expressions used more than once."""
    groups: dict[str, list[str]] = defaultdict(list)
    for tid, e in entities.items():
        groups[normalise_expression(e.referring_expression or "")].append(tid)
    return {tid: ids for ids in groups.values() if len(ids) > 1 for tid in ids}
