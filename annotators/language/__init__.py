"""Language annotators: everything that turns pixels and tubelets into words.

``backends`` holds the VLM clients (in-process transformers, OpenAI-compatible
servers) and structured-output helpers that the language stages (entity
descriptions, action timelines, instructions) call. Nothing here imports torch at
import time.
"""

from annotators.language.motion_states import MotionConfig  # noqa: E402,F401 - action timelines
from annotators.language.timeline import ActionTimeline  # noqa: E402,F401
from annotators.language.attributes import AttributeConfig, measure_video  # noqa: E402,F401 - entities
from annotators.language.entities import DescribeEntities, generalized_noun  # noqa: E402,F401
from annotators.language.prompts import PromptTemplate, get_template  # noqa: E402,F401
from annotators.language.visual_prompt import VisualPromptConfig, visual_prompt  # noqa: E402,F401
