"""What one worker of a stage needs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resources:
    """Resources one worker of a stage reserves from the scheduler.

    ``gpus`` may be fractional (0.5 packs two workers on a GPU). ``memory`` is in bytes
    and, when set, is passed to Ray as a scheduling reservation, not a hard limit.
    """

    cpus: float = 1.0
    gpus: float = 0.0
    memory: int | None = None

    def __post_init__(self) -> None:
        if self.cpus < 0 or self.gpus < 0 or (self.memory is not None and self.memory < 0):
            raise ValueError(f"resources must not be negative: {self}")

    def ray_options(self) -> dict[str, float | int]:
        """The keyword arguments Ray's scheduler takes for these resources."""
        options: dict[str, float | int] = {"num_cpus": self.cpus, "num_gpus": self.gpus}
        if self.memory:
            options["memory"] = self.memory
        return options
