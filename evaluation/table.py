"""The printed form of an ``EvalReport``: one row per video, then the overall row."""

from __future__ import annotations

from typing import Any

from tubelet.evaluation.report import EvalReport

#: (header, metrics key, kind) — kind "f" prints 3 decimals, "d" an integer.
COLUMNS: list[tuple[str, str, str]] = [
    ("J", "j", "f"),
    ("F", "f", "f"),
    ("J&F", "jf", "f"),
    ("boxIoU", "box_iou", "f"),
    ("tIoU", "tiou", "f"),
    ("vIoU", "viou", "f"),
    ("vIoU@.3", "viou@0.3", "f"),
    ("vIoU@.5", "viou@0.5", "f"),
    ("R@iou", "box_recall", "f"),
    ("MOTA", "mota", "f"),
    ("IDF1", "idf1", "f"),
    ("IDSW", "id_switches", "d"),
    ("Prec", "precision", "f"),
    ("Rec", "recall", "f"),
]


def _cell(value: Any, kind: str) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return str(int(value)) if kind == "d" else f"{value:.3f}"


def format_table(report: EvalReport) -> str:
    """A fixed-width text table (``-`` where a metric does not apply, e.g. J&F on box GT)."""
    header = ["video", "gt", "pred", "match"] + [c[0] for c in COLUMNS]
    rows = [
        [v.video_id, str(v.n_gt), str(v.n_pred), str(v.n_matched)]
        + [_cell(v.metrics.get(k), kind) for _, k, kind in COLUMNS]
        for v in report.videos
    ]
    o = report.overall
    rows.append(
        ["OVERALL", str(o["n_gt"]), str(o["n_pred"]), str(o["n_matched"])]
        + [_cell(o.get(k), kind) for _, k, kind in COLUMNS]
    )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows[:-1]]
    out += ["  ".join("-" * w for w in widths), line(rows[-1])]
    out.append(
        f"(IoU threshold {report.iou:g} for R@iou and the identity metrics; "
        f"F boundary tolerance {report.bound_th:g} of the diagonal)"
    )
    if o.get("ignored_gt"):
        out.append(f"{o['ignored_gt']} ground-truth tubelets not scored (MOT consider=0: don't-care regions)")
    if report.pred_only_videos:
        out.append(f"not scored, no ground truth: {', '.join(report.pred_only_videos)}")
    return "\n".join(out)
