"""``tubelet export``: datasets in the standard formats other tools read (MOT, DAVIS, YouTube-VIS, WebDataset)."""

from tubelet.release.exports.common import ExportError, ExportExistsError, ExportOptions
from tubelet.release.exports.export import FORMATS, ExportReport, export

__all__ = ["FORMATS", "ExportError", "ExportExistsError", "ExportOptions", "ExportReport", "export"]
