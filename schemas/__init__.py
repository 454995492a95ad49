"""The tubelet data model: records, Arrow schemas, masks and geometry.

Imports nothing of the rest of the project, so any tool can read a dataset with it.
"""

from tubelet.schemas.arrow import PRIMARY_KEYS, TABLE_SCHEMAS, records_to_table, rows_to_table, table_of
from tubelet.schemas.records import (
    Answer,
    BoxAt,
    Detection,
    Entity,
    Event,
    Instruction,
    Message,
    RegionRef,
    Reject,
    Review,
    Tubelet,
    TubeletFrame,
    VideoRecord,
)
from tubelet.schemas.version import SCHEMA_VERSION

__all__ = [
    "Answer",
    "BoxAt",
    "Detection",
    "Entity",
    "Event",
    "Instruction",
    "Message",
    "PRIMARY_KEYS",
    "RegionRef",
    "Reject",
    "Review",
    "SCHEMA_VERSION",
    "TABLE_SCHEMAS",
    "Tubelet",
    "TubeletFrame",
    "VideoRecord",
    "records_to_table",
    "rows_to_table",
    "table_of",
]
