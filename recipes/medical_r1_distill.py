"""Medical-R1-Distill-Data (FreedomIntelligence): about 22k medical questions answered by DeepSeek-R1,
with R1's reasoning trace, distilled on the verifiable problems behind HuatuoGPT-o1.

Get it: hub `FreedomIntelligence/Medical-R1-Distill-Data` (config `en`, `medical_r1_distill_sft.json`,
what MedMO read) and `FreedomIntelligence/Medical-R1-Distill-Data-Chinese` (config `zh`,
`medical_r1_distill_sft_Chinese.json`, about 17k). Apache-2.0. Choose with `-o config=en|zh`.
Files read: one JSON array, split `train`. The columns carry literal spaces and parentheses:
`question`, `reasoning (reasoning_content)`, `response (content)`; the plain spellings
(`reasoning_content` / `reasoning`, `content` / `response`) are accepted too. A reasoning text that
still wears R1's own `<think>...</think>` wrapper is unwrapped so it does not nest in ours.
Output: as medical_o1_reasoning_sft: user = question; assistant = reasoning + response in the
`-o think=tags|plain|none` form (default `tags`); `target` = {"reasoning", "answer"}. Ids are
`<config>-<row index>`. Empty fields are `empty_text`, missing ones `missing_field`; unparseable or
non-UTF-8 array items are counted rejects. Contamination: same problem pool as medical-o1 (MedQA /
MedMCQA train paraphrases, low-medium): the generic n-gram check applies.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from medmo_data.families.text_release import reasoning_release
from medmo_data.recipe import RawSample, Reject, SourceInfo

INFO = SourceInfo(
    name="medical_r1_distill", title="Medical-R1-Distill-Data", stages=(3,), tasks=("reasoning",),
    modality="none", access="open", license="Apache-2.0",
    homepage="https://huggingface.co/datasets/FreedomIntelligence/Medical-R1-Distill-Data",
    citation="FreedomIntelligence, Medical-R1-Distill-Data (DeepSeek-R1 distillation of the HuatuoGPT-o1 "
             "verifiable medical problems), 2025",
    images_per_sample=0,
)
HUB_PATTERNS = ["*.json", "*.md"]
FILES = {"en": "medical_r1_distill_sft.json", "zh": "medical_r1_distill_sft_Chinese.json"}
QUESTION = ["question", "Question"]
REASONING = ["reasoning (reasoning_content)", "reasoning_content", "reasoning"]
RESPONSE = ["response (content)", "content", "response"]


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    yield from reasoning_release(root, options, INFO.name, FILES, QUESTION, REASONING, RESPONSE)
