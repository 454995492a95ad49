"""Masklet tracking: one association algorithm (``association``) over any tracker that
implements the ``Propagator`` protocol (SAM 2 video predictor, OpenCV optical flow)."""

from tubelet.annotators.tracking.association import AssociationConfig, AssociationResult, associate
from tubelet.annotators.tracking.propagator import Propagator, Region, frames_between

__all__ = ["AssociationConfig", "AssociationResult", "Propagator", "Region", "associate", "frames_between"]
