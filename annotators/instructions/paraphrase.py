"""LLMParaphraser: an optional language model that rewords generated questions.

Questions come from templates, so a dataset of them repeats a few phrasings. A text
model (any ``VLMBackend``: an in-process transformers model or an OpenAI-compatible
server) is asked for one rephrasing per question with a versioned prompt. Only the
question's wording may change: the generator's hook (``GeneratorConfig.paraphrase``)
keeps the original whenever a rewrite drops a stated time, a ``<regionN>``
placeholder or the attribute asked about, and answers are never passed through the
model. Here, a failed or empty answer gives the original question back.

``paraphrase_all`` asks about many questions in one ``generate`` call (the backend
batches or runs them concurrently); calling the object asks about one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tubelet.annotators.language.backends.base import VLMBackend, VLMRequest
from tubelet.annotators.language.prompts import PromptTemplate

#: The released paraphrase prompt. Its text is pinned by fingerprint in the tests: a
#: wording change needs a version bump, so rows stay traceable to the prompt used.
PARAPHRASE_QUESTION = PromptTemplate(
    name="question_paraphrase",
    version="1",
    system="You rewrite questions about a video. You never answer them.",
    text=(
        "Rephrase the question below so that it asks exactly the same thing in different words.\n"
        "Keep every time (such as 2.5s), every number and every placeholder such as <region0> "
        "exactly as written. Do not answer the question and do not add information.\n"
        "Reply with the rephrased question only, on one line.\n\n"
        "Question: {question}"
    ),
)

# "Rephrased question: ..." / "Question: ..." labels a chat model may put first.
_LABEL_RE = re.compile(r"^(?:rephrased|paraphrased|reworded|new)?\s*question\s*:\s*", re.IGNORECASE)
_QUOTES = "\"'“”‘’`"


def clean_rewrite(text: str) -> str:
    """The rephrased question in a model's answer: its first non-empty line without a
    leading label ("Question:") or surrounding quotes ("" when there is none)."""
    for line in text.strip().splitlines():
        line = _LABEL_RE.sub("", line.strip()).strip().strip(_QUOTES).strip()
        if line:
            return line
    return ""


@dataclass
class LLMParaphraser:
    """A callable ``question -> rephrased question`` backed by ``backend``.

    The backend must be set up (``backend.setup()``) before the first call.
    ``paraphraser_id`` (model and prompt version) is what instructions record.
    """

    backend: VLMBackend
    template: PromptTemplate = PARAPHRASE_QUESTION
    max_new_tokens: int = 64

    def __post_init__(self) -> None:
        if self.template.fields != {"question"}:
            raise ValueError(
                f"paraphrase template {self.template.id} must have exactly the field "
                f"{{question}}, has {sorted(self.template.fields)}"
            )

    @property
    def paraphraser_id(self) -> str:
        """``<model_id>/<template name@version>``."""
        return f"{self.backend.model_id}/{self.template.id}"

    def request(self, question: str, request_id: str = "q0") -> VLMRequest:
        """The text-only request asking for one rephrasing of ``question``."""
        return VLMRequest(
            request_id=request_id,
            prompt=self.template.render(question=question),
            system=self.template.system,
            max_new_tokens=self.max_new_tokens,
        )

    def __call__(self, question: str) -> str:
        return self.paraphrase_all([question])[0]

    def paraphrase_all(self, questions: Sequence[str]) -> list[str]:
        """One rewrite per question, in order; a question asked twice is sent once, and
        any question whose request failed or came back empty is returned unchanged."""
        unique = list(dict.fromkeys(questions))
        if not unique:
            return []
        requests = [self.request(q, f"q{i}") for i, q in enumerate(unique)]
        try:
            responses = self.backend.generate(requests)
        except Exception:  # noqa: BLE001 - backends should not raise; if one does, keep the questions
            return list(questions)
        rewrites = {}
        for question, response in zip(unique, responses):
            text = clean_rewrite(response.text) if response.ok else ""
            rewrites[question] = text or question
        return [rewrites.get(q, q) for q in questions]
