"""GenerateInstructions: the stage that turns each task's tubelets, entities and events
into instruction rows (any subset of the task types), checked before they are kept."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from annotators.instructions.checks import check_instructions
from annotators.instructions.dedup import DEFAULT_THRESHOLD, Encoder, dedup_instructions, load_sentence_encoder
from annotators.instructions.generator import TASK_TYPES, GeneratorConfig, generate_instructions
from engine.stage import Stage
from engine.task import VideoTask


@dataclass
class GenerateInstructions(Stage):
    """Append ``Instruction`` rows to each task.

    Every generated instruction is re-checked against the task's rows; one that fails
    (it should not: answers are computed) becomes a reject with ``item`` = its id
    instead of a row. With ``dedup=True`` near-duplicate questions are dropped with the
    packaged sentence-embedding model (the ``dedup`` extra); without the package the
    stage logs why and keeps them. No model otherwise, so no ``setup()``.
    """

    task_types: tuple[str, ...] | list[str] = TASK_TYPES
    seed: int = 0
    max_per_task: int = 6
    region_frames: int = 3
    st_boxes: int = 4
    dedup: bool = False
    dedup_threshold: float = DEFAULT_THRESHOLD
    _encoder: Encoder | None = field(default=None, init=False, repr=False, compare=False)
    _dedup_missing: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.task_types = tuple(self.task_types)
        self._config()  # fail at build time on an unknown task type

    def _config(self) -> GeneratorConfig:
        return GeneratorConfig(task_types=self.task_types, seed=self.seed, max_per_task=self.max_per_task,
                               region_frames=self.region_frames, st_boxes=self.st_boxes)

    def process(self, batch: list[VideoTask]) -> list[VideoTask]:
        config = self._config()
        for task in batch:
            self.generate_task(task, config)
        return batch

    def generate_task(self, task: VideoTask, config: GeneratorConfig) -> None:
        """Generate, check and (optionally) de-duplicate one task's instructions in place."""
        insts = generate_instructions(task.tubelets, task.entities, task.events, video=task.video, config=config)
        report = check_instructions(insts, task.tubelets, task.entities, task.events)
        for problem in report.problems:
            task.reject(self.name, problem.instruction_id, f"{problem.kind}: {problem.message}")
        insts = [i for i in insts if i.instruction_id not in report.bad_ids]
        if self.dedup and insts:
            insts = self._dedup(task, insts)
        task.instructions.extend(insts)

    def _dedup(self, task: VideoTask, insts: list[Any]) -> list[Any]:
        if self._encoder is None and self._dedup_missing is None:
            try:
                self._encoder = load_sentence_encoder()
            except ImportError as error:  # skip cleanly, once per worker
                self._dedup_missing = str(error)
        if self._encoder is None:
            return insts
        result = dedup_instructions(insts, self.dedup_threshold, encoder=self._encoder)
        for removed, kept, sim in result.removed:
            task.reject(self.name, removed, f"near-duplicate of {kept} (cosine {sim:.3f})")
        return result.kept
