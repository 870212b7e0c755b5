"""A tiny random-weight Qwen3-VL and its processor, built offline, for tests and the demo.

    python -m medmo_train.tiny OUT_DIR

Everything is made locally: a byte-level BPE tokenizer trained on a small built-in medical/grounding
corpus (plus Qwen's special tokens), the real `Qwen3VLProcessor` (patch 16, merge 2 -> 32-pixel grid)
with TRL's bundled `qwen3_vl.jinja` chat template byte for byte (so that `assistant_only_loss` finds its
training template), and `Qwen3VLForConditionalGeneration` with 2 text layers (hidden 64) and a 2-block
vision tower (hidden 32). About 0.5 M parameters; it trains a step in well under a second on a CPU.
"""

from __future__ import annotations

import sys
from pathlib import Path

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
            "<|image_pad|>", "<|video_pad|>"]
CORPUS = [
    "You are a medical imaging expert.", "Describe the image.", "What abnormality is seen?",
    "Find every lesion on this CT slice and name the body region of each.",
    "Answer with one line per finding: `label <box>[[x1, y1, x2, y2]]</box>`, coordinates as integers "
    "from 0 to 1000 relative to the image width and height.",
    'Answer in JSON: [{"bbox_2d": [x1, y1, x2, y2], "label": "..."}]',
    "<think> reasoning </think> <answer> final answer </answer>",
    "liver lung kidney bone pelvis abdomen mediastinum soft tissue lesion nodule mass effusion "
    "pneumothorax cardiomegaly atelectasis infiltration fracture yes no none found",
    "The chest x-ray shows a small right pleural effusion. No pneumothorax.",
    "0 1 2 3 4 5 6 7 8 9 10 100 250 500 750 1000 [[ ]], ( ) : ; . ? !",
    "system user assistant", "A. B. C. D. The answer is", "CT MRI ultrasound pathology fundus",
]


def chat_template() -> str:
    """TRL's bundled Qwen3-VL template, byte for byte."""
    import trl

    return (Path(trl.__file__).parent / "chat_templates" / "qwen3_vl.jinja").read_text(encoding="utf-8")


def build_tokenizer(vocab_size: int = 400):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   model_max_length=32768)
    fast.chat_template = chat_template()
    return fast


def build_processor():
    from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor

    image = Qwen2VLImageProcessor(patch_size=16, merge_size=2, temporal_patch_size=2,
                                  size={"shortest_edge": 32 * 32, "longest_edge": 256 * 256},
                                  image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
    video = Qwen3VLVideoProcessor(patch_size=16, merge_size=2, temporal_patch_size=2)
    tok = build_tokenizer()
    return Qwen3VLProcessor(image_processor=image, tokenizer=tok, video_processor=video,
                            chat_template=chat_template())


def build_model(processor, seed: int = 0):
    import torch
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    tok = processor.tokenizer
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIALS}
    cfg = Qwen3VLConfig(
        text_config={
            "vocab_size": len(tok), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "max_position_embeddings": 4096,
            "rope_parameters": {"rope_type": "default", "rope_theta": 5e6, "mrope_section": [2, 3, 3],
                                "mrope_interleaved": True},
            "pad_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
        },
        vision_config={"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
                       "out_hidden_size": 64, "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2,
                       "num_position_embeddings": 256, "deepstack_visual_indexes": [1]},
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(cfg).to(torch.bfloat16)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    return model


def build_tiny(out_dir: str | Path) -> Path:
    """Write the tiny checkpoint + processor to out_dir (idempotent: an existing one is kept)."""
    out = Path(out_dir)
    if (out / "config.json").exists() and (out / "processor_config.json").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    processor = build_processor()
    build_model(processor).save_pretrained(out)
    processor.save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m medmo_train.tiny OUT_DIR", file=sys.stderr)
        return 2
    print(build_tiny(args[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
