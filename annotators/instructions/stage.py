"""GenerateInstructions: the stage that turns each task's tubelets, entities and events
into instruction rows (any subset of the task types), checked before they are kept."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from tubelet.annotators.instructions import derive as d
from tubelet.annotators.instructions.checks import check_instructions, question_of
from tubelet.annotators.instructions.dedup import DEFAULT_THRESHOLD, Encoder, dedup_instructions, load_sentence_encoder
from tubelet.annotators.instructions.generator import TASK_TYPES, GeneratorConfig, generate_instructions
from tubelet.annotators.instructions.paraphrase import LLMParaphraser
from tubelet.annotators.language.backends.base import VLMBackend, make_backend
from tubelet.engine.stage import Stage
from tubelet.engine.task import VideoTask
from tubelet.schemas.records import Instruction


@dataclass
class GenerateInstructions(Stage):
    """Append ``Instruction`` rows to each task.

    Every generated instruction is re-checked against the task's rows; one that fails
    (it should not: answers are computed) becomes a reject with ``item`` = its id
    instead of a row. With ``dedup=True`` near-duplicate questions are dropped with the
    packaged sentence-embedding model (the ``dedup`` extra); without the package the
    stage logs why and keeps them.

    ``paraphrase_backend`` (``"transformers"`` or ``"openai"``, built with
    ``paraphrase_options`` as ``make_backend`` takes them) rewords the questions with an
    ``LLMParaphraser``, one batched call per ``process`` batch; answers, ids and
    provenance are untouched, and a rewrite that drops a time, placeholder or asked
    attribute is discarded. Rewritten rows record the model and prompt in
    ``generator_id`` (``<generator>+paraphrase:<model>/<prompt@version>``). Without a
    paraphraser the stage holds no model and needs no actor.
    """

    task_types: tuple[str, ...] | list[str] = TASK_TYPES
    seed: int = 0
    max_per_task: int = 6
    region_frames: int = 3
    st_boxes: int = 4
    dedup: bool = False
    dedup_threshold: float = DEFAULT_THRESHOLD
    paraphrase_backend: str | None = None
    paraphrase_options: dict[str, Any] = field(default_factory=dict)
    _encoder: Encoder | None = field(default=None, init=False, repr=False, compare=False)
    _dedup_missing: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.task_types = tuple(self.task_types)
        self._config()  # fail at build time on an unknown task type
        # The backend object (not its model) is built now: a bad option fails here.
        self._backend: VLMBackend | None = (
            None if self.paraphrase_backend is None else make_backend(self.paraphrase_backend, self.paraphrase_options)
        )
        self._paraphraser: LLMParaphraser | None = None

    @property
    def model_id(self) -> str | None:
        return None if self._backend is None else self._backend.model_id

    @property
    def needs_actor(self) -> bool:
        # template-only generation holds no model: plain tasks are enough
        return self._backend is not None or self.resources.gpus > 0

    def setup(self) -> None:
        """Load the paraphrase model (once per worker); nothing to do without one."""
        if self._backend is not None and self._paraphraser is None:
            self._backend.setup()
            self._paraphraser = LLMParaphraser(self._backend)

    def teardown(self) -> None:
        if self._backend is not None and self._paraphraser is not None:
            self._backend.close()
        self._paraphraser = None

    def _config(self) -> GeneratorConfig:
        return GeneratorConfig(
            task_types=self.task_types,
            seed=self.seed,
            max_per_task=self.max_per_task,
            region_frames=self.region_frames,
            st_boxes=self.st_boxes,
        )

    def process(self, batch: list[VideoTask]) -> list[VideoTask]:
        config, originals = self._config(), None
        if self._backend is not None:
            if self._paraphraser is None:
                raise RuntimeError(f"stage {self.name}: setup() was not called (a runner calls it once per worker)")
            config, originals = self._paraphrasing_config(batch, config)
        for task in batch:
            self.generate_task(task, config, originals)
        return batch

    def _paraphrasing_config(
        self, batch: list[VideoTask], config: GeneratorConfig
    ) -> tuple[GeneratorConfig, dict[str, str]]:
        """``config`` with a paraphrase hook answering from one batched call for the whole
        batch, and each instruction id's template question. The generator is a pure
        function of the rows, so a first pass without the hook yields exactly the
        questions the second pass will show it (and the same ids: they hash the template
        question, not the shown one)."""
        assert self._paraphraser is not None
        originals = {i.instruction_id: question_of(i) for task in batch for i in self._generate(task, config)}
        questions = list(originals.values())
        rewrites = dict(zip(questions, self._paraphraser.paraphrase_all(questions)))
        return replace(config, paraphrase=rewrites.get), originals

    @staticmethod
    def _generate(task: VideoTask, config: GeneratorConfig) -> list[Instruction]:
        return generate_instructions(task.tubelets, task.entities, task.events, video=task.video, config=config)

    def generate_task(self, task: VideoTask, config: GeneratorConfig, originals: dict[str, str] | None = None) -> None:
        """Generate, check and (optionally) de-duplicate one task's instructions in place.
        ``originals`` (instruction id -> template question) marks reworded rows."""
        insts = self._generate(task, config)
        if originals is not None and self._paraphraser is not None:
            tag = f"{d.GENERATOR_ID}+paraphrase:{self._paraphraser.paraphraser_id}"
            for inst in insts:
                if question_of(inst) != originals.get(inst.instruction_id):
                    inst.generator_id = tag
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
