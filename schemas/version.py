"""Schema version of the on-disk dataset.

Bump MINOR for additive changes (a new nullable column, a new table): older readers
still read the data. Bump MAJOR for anything that changes the meaning or type of an
existing column: readers refuse a dataset with a newer major version.
"""

# 1.1.0: events.prompt_version, instructions.query (nullable, additive)
# 1.2.0: videos.rotation (nullable, additive)
SCHEMA_VERSION = "1.2.0"


def parse_version(version: str) -> tuple[int, int, int]:
    """Split ``"MAJOR.MINOR.PATCH"`` into integers; raises ValueError on anything else."""
    parts = version.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"not a MAJOR.MINOR.PATCH version: {version!r}")
    major, minor, patch = (int(p) for p in parts)
    return major, minor, patch
