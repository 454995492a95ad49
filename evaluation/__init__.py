"""Evaluation of tubelets against ground truth (``tubelet eval PRED GT``).

Modules, one job each: ``tracks`` (tubelets table → per-frame tracks), ``davis`` (J and
F of one frame), ``masks`` (J and F of a tubelet), ``temporal`` (box IoU, tIoU, vIoU),
``matching`` (Hungarian matching of tubelets), ``identity`` (MOTA/IDF1 via motmetrics,
box recall), ``trackeval_metrics`` (TrackEval's HOTA/CLEAR/Identity code on sequences
built in memory), ``hota`` (HOTA under the default protocol), ``motchallenge`` (the
``--protocol motchallenge`` preprocessing: TrackEval's official MOT17 evaluation),
``results`` (the report dataclasses), ``report`` (``evaluate``), ``table`` (the printed
form).
"""

from tubelet.evaluation.davis import BOUND_TH, contour_accuracy, region_similarity
from tubelet.evaluation.motchallenge import ProtocolInputError
from tubelet.evaluation.report import evaluate, evaluate_datasets
from tubelet.evaluation.results import PROTOCOLS, EvalReport, ObjectResult, VideoResult
from tubelet.evaluation.table import format_table

__all__ = [
    "BOUND_TH",
    "EvalReport",
    "PROTOCOLS",
    "ObjectResult",
    "ProtocolInputError",
    "VideoResult",
    "contour_accuracy",
    "evaluate",
    "evaluate_datasets",
    "format_table",
    "region_similarity",
]
