"""medical-o1-reasoning-SFT (FreedomIntelligence, HuatuoGPT-o1; Chen et al., arXiv 2412.18925): medical
questions with a long GPT-4o chain of thought and a final response, built from the open-ended
rewrites of MedQA/MedMCQA training questions in `medical-o1-verifiable-problem`.

Get it: hub `FreedomIntelligence/medical-o1-reasoning-SFT` (Apache-2.0); pin a revision: before
2025-04-22 `medical_o1_sft.json` was the 75 MB file that already mixed general-domain data.
Files read (one JSON array each, split `train`), chosen by `-o config=`:
`en` (default) `medical_o1_sft.json` · `zh` `medical_o1_sft_Chinese.json` · `en_mix`
`medical_o1_sft_mix.json` (medical + general instructions; what MedMO read) · `zh_mix`
`medical_o1_sft_mix_Chinese.json`. Fields `Question`, `Complex_CoT`, `Response`; any other field
(the pipeline's `options`, `answer_idx`, ... in HuatuoGPT-o1's demo file) is ignored.
Output: user = `Question`; assistant = the chain of thought and the response in the form chosen by
`-o think=`: `tags` (default) `<think>\\n{CoT}\\n</think>\\n{Response}`, `plain` `{CoT}\\n\\n{Response}`,
`none` `{Response}` only; `target` always keeps `reasoning` and `answer` apart. Ids are
`<config>-<row index>` (the release has no ids). Rows with an empty field are `empty_text`, a missing
field `missing_field`; array items that do not parse or are not UTF-8 are counted rejects.
Contamination: paraphrased from MedQA/MedMCQA *train* (low-medium risk): the generic n-gram check applies.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from medmo_data.families.text_release import reasoning_release
from medmo_data.recipe import RawSample, Reject, SourceInfo

INFO = SourceInfo(
    name="medical_o1_reasoning_sft", title="medical-o1-reasoning-SFT (HuatuoGPT-o1)", stages=(3,),
    tasks=("reasoning",), modality="none", access="open", license="Apache-2.0",
    homepage="https://huggingface.co/datasets/FreedomIntelligence/medical-o1-reasoning-SFT",
    citation="Chen et al., HuatuoGPT-o1, Towards Medical Complex Reasoning with LLMs, arXiv 2412.18925",
    images_per_sample=0,
)
HUB_PATTERNS = ["*.json", "*.md"]
FILES = {"en": "medical_o1_sft.json", "zh": "medical_o1_sft_Chinese.json",
         "en_mix": "medical_o1_sft_mix.json", "zh_mix": "medical_o1_sft_mix_Chinese.json"}


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    yield from reasoning_release(root, options, INFO.name, FILES, ["Question"], ["Complex_CoT"], ["Response"])
