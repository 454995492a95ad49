"""Detector stages: keyframes sampled at a rate, batched, boxes into ``task.detections``.

``KeyframeDetector`` is the shared loop; each detector only turns a batch of RGB
frames into ``FrameBoxes``. Model libraries are imported in ``setup()``.
"""

from tubelet.annotators.detectors.boxes import FrameBoxes
from tubelet.annotators.detectors.keyframes import KeyframeDetector
from tubelet.annotators.detectors.motion import MotionDetector
from tubelet.annotators.detectors.open_vocab import OpenVocabDetector
from tubelet.annotators.detectors.yolo import YoloDetector

__all__ = ["FrameBoxes", "KeyframeDetector", "MotionDetector", "OpenVocabDetector", "YoloDetector"]
