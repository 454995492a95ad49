"""Benchmark: are the lite referring expressions and answers true and fit to publish? (issue 15)

Two measurements:

``fixture``: the hand-labelled frames of the bundled videos
(``tests/annotators/language/data/expressions_fixture.json``: boxes, true garment
colours, object colours, per-frame relations). Masks are GrabCut on the labelled boxes
(the lite segmenter); entities are made by ``DescribeEntities`` (lite). Prints garment
colour accuracy (and how many garment colours were said of how many labelled), object
colour accuracy, relation accuracy, and the share of expressions with a false or unfit
statement, then each expression.

``dataset DIR...``: strefer datasets (e.g. lite runs on the bundled videos). Per video:
instructions, those naming a person by a colour of the whole body ("the black person",
a colour question about a person), those wording an instant as a span ("From 2.24s to
2.24s"), and those with float noise in the answer (a box coordinate not rounded to one
decimal, a time with more digits than its frame needs, a long decimal in the text).

    TUBELET_ASSETS=../shared/assets python bench/bench_expressions.py fixture
    python bench/bench_expressions.py dataset out/strefer-lite
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.annotators.language.expression_fixture import score_fixture  # noqa: E402
from tubelet.engine.dataset import Dataset  # noqa: E402
from tubelet.schemas.records import Instruction  # noqa: E402

_COLOURS = "black|white|grey|gray|red|orange|yellow|green|blue|purple|pink|brown"
_PEOPLE = "person|people|man|woman|boy|girl|child|pedestrian"
_WHOLE_BODY = re.compile(rf"\b({_COLOURS})\s+(?:\w+\s+)?({_PEOPLE})\b", re.I)
_INSTANT_AS_SPAN = re.compile(r"From (\d+(?:\.\d+)?)\s?s to \1\s?s", re.I)
_LONG_DECIMAL = re.compile(r"\d+\.\d{4,}")


def fixture(args: argparse.Namespace) -> None:
    assets = Path(os.environ.get("TUBELET_ASSETS", ROOT.parent / "shared" / "assets"))
    if not (assets / "videos" / "sam2-demo").is_dir():
        sys.exit(f"no assets at {assets}: set TUBELET_ASSETS")
    score = score_fixture(assets)
    print(json.dumps(score.figures(), indent=2))
    print("\n".join(score.texts))
    if score.false:
        print("false statements:\n  " + "\n  ".join(score.false))


def _noisy(inst: Instruction) -> bool:
    """Float noise in the answer: a box not at one decimal, a time finer than a millisecond,
    or a number with four or more decimals in the assistant's text."""
    ans = inst.answer
    values = [v for b in ans.boxes for v in b.box_xyxy]
    if any(abs(v - round(v, 1)) > 1e-9 for v in values):
        return True
    times = list(ans.span_s or []) + [b.t_s for b in ans.boxes]
    if any(abs(t - round(t, 3)) > 1e-9 for t in times):
        return True
    return any(_LONG_DECIMAL.search(m.content) for m in inst.messages if m.role == "assistant")


def dataset(args: argparse.Namespace) -> None:
    for root in args.paths:
        ds = Dataset(root)
        category = {t.tubelet_id: t.category for t in ds.records("tubelets")}
        counts: Counter[tuple[str, str]] = Counter()
        for inst in ds.records("instructions"):
            text = " ".join(m.content for m in inst.messages)
            person_colour_asked = (
                inst.task_type == "region_qa"
                and inst.query.get("attribute") == "colour"
                and bool(inst.regions)
                and category.get(inst.regions[0].tubelet_id) == "person"
            )
            for vid in (inst.video_id, "all"):
                counts[vid, "instructions"] += 1
                counts[vid, "whole-body person colour"] += bool(_WHOLE_BODY.search(text)) or person_colour_asked
                counts[vid, "instant worded as a span"] += bool(_INSTANT_AS_SPAN.search(text))
                counts[vid, "float noise in the answer"] += _noisy(inst)
        print(f"{root}:")
        for vid in sorted({v for v, _ in counts}, key=lambda v: (v == "all", v)):
            figures = {k: counts[v, k] for v, k in counts if v == vid}
            print(f"  {vid}: " + ", ".join(f"{k} {n}" for k, n in figures.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("fixture", help="expression accuracy on the hand-labelled frames").set_defaults(run=fixture)
    data = sub.add_parser("dataset", help="whole-body colours, instants and float noise in strefer datasets")
    data.add_argument("paths", nargs="+")
    data.set_defaults(run=dataset)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
