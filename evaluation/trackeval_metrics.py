"""TrackEval's own metric code (HOTA, CLEAR, Identity) run on sequences built in memory.

TrackEval (``trackeval`` on PyPI; Luiten et al., "HOTA: A Higher Order Metric for
Evaluating Multi-Object Tracking", IJCV 2021) evaluates a sequence from one dict: per
frame the ground-truth and tracker ids (relabelled ``0..n-1``) and their similarity
matrix, plus the id and detection counts. Its datasets build that dict from files;
here the protocols build it from tubelets (``FramePairs`` per frame, ``sequence_data``),
and TrackEval's metric classes do the rest: ``eval_sequence`` per video,
``combine_sequences`` over videos (counts summed, as TrackEval's COMBINED_SEQ).

A summary value is what TrackEval prints: a per-alpha array (HOTA, DetA, …) is
reported as its mean over the 19 localisation thresholds alpha = 0.05 … 0.95.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: TrackEval metric classes run by the protocols, in TrackEval's order.
METRICS = ("HOTA", "CLEAR", "Identity")

#: TrackEval summary fields -> the keys this package reports (shared with motmetrics' keys).
SUMMARY_KEYS: dict[str, dict[str, str]] = {
    "HOTA": {
        "HOTA": "hota",
        "DetA": "deta",
        "AssA": "assa",
        "LocA": "loca",
        "DetRe": "detre",
        "DetPr": "detpr",
        "AssRe": "assre",
        "AssPr": "asspr",
    },
    "CLEAR": {
        "MOTA": "mota",
        "CLR_Re": "recall",
        "CLR_Pr": "precision",
        "IDSW": "id_switches",
        "CLR_FP": "false_positives",
        "CLR_FN": "misses",
        "CLR_TP": "true_positives",
        "MT": "mostly_tracked",
        "ML": "mostly_lost",
        "Frag": "fragmentations",
    },
    "Identity": {"IDF1": "idf1", "IDP": "idp", "IDR": "idr"},
}


@dataclass(frozen=True)
class FramePairs:
    """One frame to score: ground-truth and predicted ids (any ints, unique within the
    frame) and their similarity, shape ``(len(gt_ids), len(pred_ids))``, in [0, 1]."""

    gt_ids: Sequence[int]
    pred_ids: Sequence[int]
    similarity: np.ndarray


def sequence_data(name: str, frames: Sequence[FramePairs]) -> dict[str, Any]:
    """TrackEval's per-sequence input (what ``get_preprocessed_seq_data`` returns): ids
    relabelled ``0..n-1`` in ascending order of the given ids, as TrackEval relabels them."""
    gt_map = {g: k for k, g in enumerate(sorted({g for f in frames for g in f.gt_ids}))}
    pred_map = {p: k for k, p in enumerate(sorted({p for f in frames for p in f.pred_ids}))}
    for t, f in enumerate(frames):
        if len(set(f.gt_ids)) != len(f.gt_ids) or len(set(f.pred_ids)) != len(f.pred_ids):
            raise ValueError(f"{name}: an id appears twice on timestep {t + 1}")
        if np.shape(f.similarity) != (len(f.gt_ids), len(f.pred_ids)):
            raise ValueError(f"{name}: similarity of shape {np.shape(f.similarity)} on timestep {t + 1}")
    return {
        "seq": name,
        "num_timesteps": len(frames),
        "gt_ids": [np.array([gt_map[g] for g in f.gt_ids], dtype=int) for f in frames],
        "tracker_ids": [np.array([pred_map[p] for p in f.pred_ids], dtype=int) for f in frames],
        "similarity_scores": [np.asarray(f.similarity, dtype=np.float64) for f in frames],
        "num_gt_ids": len(gt_map),
        "num_tracker_ids": len(pred_map),
        "num_gt_dets": sum(len(f.gt_ids) for f in frames),
        "num_tracker_dets": sum(len(f.pred_ids) for f in frames),
    }


def _metric(name: str) -> Any:
    import trackeval  # imported here: only evaluation needs it

    cls = getattr(trackeval.metrics, name)
    return cls() if name == "HOTA" else cls({"PRINT_CONFIG": False})  # HOTA takes no config


def run_trackeval(
    sequences: Mapping[str, dict[str, Any]], metrics: Sequence[str] = METRICS
) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[str, dict[str, Any]]]:
    """TrackEval's results ``{sequence: {metric: {field: value}}}`` and the combined
    ``{metric: {field: value}}`` over all sequences (None-free even with no sequence)."""
    objs = {name: _metric(name) for name in metrics}
    per_seq = {seq: {name: m.eval_sequence(data) for name, m in objs.items()} for seq, data in sequences.items()}
    if not per_seq:  # one empty sequence: TrackEval's figures for "nothing to score"
        empty = sequence_data("", [])
        combined = {name: m.eval_sequence(empty) for name, m in objs.items()}
    else:
        combined = {name: m.combine_sequences({s: r[name] for s, r in per_seq.items()}) for name, m in objs.items()}
    return per_seq, combined


def summary(results: Mapping[str, Mapping[str, Any]]) -> dict[str, float | int]:
    """The reported keys (``SUMMARY_KEYS``) of one result: per-alpha arrays averaged."""
    out: dict[str, float | int] = {}
    for metric, fields in results.items():
        for field, key in SUMMARY_KEYS.get(metric, {}).items():
            value = fields[field]
            out[key] = int(value) if isinstance(value, (int, np.integer)) else float(np.mean(value))
    return out


def plain(results: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """TrackEval's result with its own field names, arrays as lists, for JSON."""
    return {metric: {field: _plain(value) for field, value in fields.items()} for metric, fields in results.items()}


def _plain(value: Any) -> Any:
    """numpy arrays as lists, numpy scalars as Python numbers."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value.item() if isinstance(value, np.generic) else value
