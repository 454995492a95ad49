"""Benchmark: counting, order and verification answers of lite tracks against ground truth.

For DAVIS-2016 (8 sequences) and MOT17-mini (7): the ground truth is imported, the same
videos are tracked with the lite profile (YOLOv8n TFLite; MOT17-mini as in
bench_track_identity: persons, a keyframe on every frame), the instruction generator
(``annotators/instructions``) makes counting / entity_order / timestamp_verification
questions from each dataset, and every question is asked of the other dataset with
the generator's own derivations (``evaluation/answers.py`` says how questions are
matched). Prints, per dataset, direction and task type: questions asked, comparable
(their objects have counterparts), equal answers and the share, and a few answers that
differ.

    python bench/bench_answers_vs_gt.py [--assets DIR] [--set KEY=JSON ...] [--min-similarity 0.3] [--max-per-task 50]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench_track_identity import MOT_PARAMS
from tracking_runs import default_assets, fmt, import_gt, lite_yolo, track, video_list, with_sets

from tubelet.annotators.instructions.generator import GeneratorConfig
from tubelet.engine.dataset import Dataset
from tubelet.evaluation.answers import TASKS, Agreement, Tally, answer_agreement


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", default=default_assets())
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="a track param of both runs")
    parser.add_argument("--min-similarity", type=float, default=0.3)
    parser.add_argument("--examples", type=int, default=4, help="differing answers shown per direction")
    parser.add_argument(
        "--max-per-task",
        type=int,
        default=50,
        help="questions per task type and video (the generator's default is 6; more gives steadier shares)",
    )
    args = parser.parse_args()
    assets = Path(args.assets)
    runs = {
        "DAVIS-2016": (video_list("davis2016", assets), {"fps": 24}, lite_yolo(assets)),
        "MOT17-mini": (video_list("mot17-mini", assets), None, lite_yolo(assets, **MOT_PARAMS)),
    }
    totals = {"tracked -> gt": Tally(), "gt -> tracked": Tally()}
    for name, (videos, defaults, params) in runs.items():
        with tempfile.TemporaryDirectory() as tmp:
            import_gt(videos, f"{tmp}/gt", defaults)
            track(videos, f"{tmp}/pred", with_sets(params, args.set), defaults)
            gt = Dataset(f"{tmp}/gt")
            pairs = answer_agreement(
                Dataset(f"{tmp}/pred").read_table("tubelets"),
                gt.read_table("tubelets"),
                gt.read_table("videos"),
                min_similarity=args.min_similarity,
                config=GeneratorConfig(task_types=TASKS, max_per_task=args.max_per_task),
            )
        for agreement in pairs:
            report(name, agreement, args.examples)
            totals[agreement.direction].add(agreement.total())
    for direction, tally in totals.items():
        print(
            f"both datasets, {direction}: {tally.equal}/{tally.comparable} equal = {fmt(tally.share)} "
            f"({tally.asked} asked)"
        )


def report(name: str, agreement: Agreement, examples: int) -> None:
    print(f"\n{name}, {agreement.direction}")
    print(f"{'task':<24} {'asked':>6} {'comparable':>10} {'equal':>6} {'share':>6}")
    for task, tally in [*agreement.overall().items(), ("all", agreement.total())]:
        print(f"{task:<24} {tally.asked:>6} {tally.comparable:>10} {tally.equal:>6} {fmt(tally.share):>6}")
    assert set(agreement.overall()) == set(TASKS)
    for example in agreement.examples[:examples]:
        print(
            f"  differs: {example['video_id']}: {example['question']!r} -> {example['source']} vs {example['target']}"
        )


if __name__ == "__main__":
    main()
