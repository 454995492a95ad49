"""Language annotators: everything that turns pixels and tubelets into words.

``backends`` holds the VLM clients (in-process transformers, OpenAI-compatible
servers) and structured-output helpers that the language stages (entity
descriptions, action timelines, instructions) call. Nothing here imports torch at
import time.
"""

from tubelet.annotators.language.attributes import AttributeConfig, measure_video  # noqa: F401 - entities
from tubelet.annotators.language.entities import DescribeEntities, generalized_noun  # noqa: F401
from tubelet.annotators.language.motion_states import MotionConfig  # noqa: F401 - action timelines
from tubelet.annotators.language.prompts import PromptTemplate, get_template  # noqa: F401
from tubelet.annotators.language.timeline import ActionTimeline  # noqa: F401
from tubelet.annotators.language.visual_prompt import VisualPromptConfig, visual_prompt  # noqa: F401
