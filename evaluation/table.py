"""The printed form of an ``EvalReport``: one row per video, then the overall row."""

from __future__ import annotations

from typing import Any

from tubelet.evaluation.results import EvalReport

#: (header, metrics key, kind) — kind "f" prints 3 decimals, "d" an integer.
Column = tuple[str, str, str]

_HOTA: list[Column] = [("HOTA", "hota", "f"), ("DetA", "deta", "f"), ("AssA", "assa", "f"), ("LocA", "loca", "f")]

#: The default protocol's columns.
COLUMNS: list[Column] = [
    ("J", "j", "f"),
    ("F", "f", "f"),
    ("J&F", "jf", "f"),
    ("boxIoU", "box_iou", "f"),
    ("tIoU", "tiou", "f"),
    ("vIoU", "viou", "f"),
    ("vIoU@.3", "viou@0.3", "f"),
    ("vIoU@.5", "viou@0.5", "f"),
    ("R@iou", "box_recall", "f"),
    *_HOTA,
    ("MOTA", "mota", "f"),
    ("IDF1", "idf1", "f"),
    ("IDSW", "id_switches", "d"),
    ("Prec", "precision", "f"),
    ("Rec", "recall", "f"),
]

#: The MOTChallenge protocol's columns (TrackEval's names in its summary: DetRe… CLR_FP).
MOTCHALLENGE_COLUMNS: list[Column] = [
    *_HOTA,
    ("DetRe", "detre", "f"),
    ("DetPr", "detpr", "f"),
    ("AssRe", "assre", "f"),
    ("AssPr", "asspr", "f"),
    ("MOTA", "mota", "f"),
    ("IDF1", "idf1", "f"),
    ("IDSW", "id_switches", "d"),
    ("TP", "true_positives", "d"),
    ("FN", "misses", "d"),
    ("FP", "false_positives", "d"),
    ("Prec", "precision", "f"),
    ("Rec", "recall", "f"),
]


def _cell(value: Any, kind: str) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return str(int(value)) if kind == "d" else f"{value:.3f}"


def format_table(report: EvalReport) -> str:
    """A fixed-width text table (``-`` where a metric does not apply, e.g. J&F on box GT)."""
    mot = report.protocol == "motchallenge"
    columns = MOTCHALLENGE_COLUMNS if mot else COLUMNS
    counts = ["gt", "pred"] if mot else ["gt", "pred", "match"]

    def count_cells(n_gt: Any, n_pred: Any, n_matched: Any) -> list[str]:
        return [str(n_gt), str(n_pred)] + ([] if mot else [str(n_matched)])

    header = ["video", *counts] + [c[0] for c in columns]
    rows = [
        [v.video_id, *count_cells(v.n_gt, v.n_pred, v.n_matched)]
        + [_cell(v.metrics.get(k), kind) for _, k, kind in columns]
        for v in report.videos
    ]
    o = report.overall
    rows.append(
        ["OVERALL", *count_cells(o["n_gt"], o["n_pred"], o["n_matched"])]
        + [_cell(o.get(k), kind) for _, k, kind in columns]
    )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows[:-1]]
    out += ["  ".join("-" * w for w in widths), line(rows[-1])]
    out += _notes(report)
    if report.pred_only_videos:
        out.append(f"not scored, no ground truth: {', '.join(report.pred_only_videos)}")
    return "\n".join(out)


def _notes(report: EvalReport) -> list[str]:
    o = report.overall
    if report.protocol == "motchallenge":
        notes = [
            "(MOTChallenge protocol, as TrackEval's MOT17 evaluation: pedestrians with consider=1 are scored, "
            "unclipped boxes, visibility not used; IoU 0.5; gt/pred count ids, HOTA averaged over alpha 0.05-0.95)"
        ]
        if o.get("distractor_matches"):
            notes.append(f"{o['distractor_matches']} predicted boxes removed as matches of distractor classes")
        return notes
    notes = [
        f"(IoU threshold {report.iou:g} for R@iou and the identity metrics; "
        f"F boundary tolerance {report.bound_th:g} of the diagonal; "
        f"HOTA on {o.get('hota_similarity') or 'box'} IoU, averaged over alpha 0.05-0.95)"
    ]
    if o.get("ignored_gt"):
        notes.append(
            f"{o['ignored_gt']} ground-truth tubelets not scored (MOT consider=0: don't-care regions; "
            "--protocol motchallenge scores as the official MOT17 evaluation)"
        )
    return notes
