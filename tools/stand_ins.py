"""Stand-in Hub repositories under the chapter's three ids (and open_clip's copy of OpenAI's CLIP), laid out file for
file like the real ones.

    python tools/stand_ins.py tiny      # build (once) and print the folder: about 30 MB, a minute on a CPU
    python tools/stand_ins.py real      # the real architectures with random weights (about 16 GB; for a GPU run)

`tools/loopback_hub.py` serves the folder as a Hub, so hub mode's loaders, downloads and mode switches run for real
without the 16 GB of the chapter's checkpoints. Which file each real repository holds, and where that fact comes
from, is in docs/loopback-hub.md. Two sizes:

- tiny: the same config keys with shrunk widths. CLIP is the embedded checkpoint (the real 49,408-entry CLIP
  vocabulary); BLIP-2 is random, with 32 query tokens as the real one and the embedded OPT-style tokenizer (4,096
  entries, so `<image>` is id 4096 where the real repo's is 50265).
- real: `CLIPConfig()` (ViT-B/32, 151,277,313 parameters) and BLIP-2 with the real repo's widths (ViT-g vision
  tower, OPT-2.7b: 3,744,761,856 parameters), random weights, saved in float32 as the real repos are.
- both sizes: OPEN_CLIP_HUB_ID, what `open_clip.create_model_and_transforms("ViT-B-32-quickgelu", pretrained="openai")`
  downloads (lesson 02, hub mode). open_clip builds that architecture from its own config, so the stand-in is a
  full-size ViT-B/32: the real size's CLIP converted (the same weights, so lesson 02's agreement check holds), or for
  tiny a random `CLIPConfig()` CLIP of its own (605 MB; the check then prints False).

Built once into MMLAB_STAND_INS (default ~/.cache/mmlab-stand-ins)/<size>/<owner>/<name>/; a `.complete` stamp
marks a finished build of this BUILD_VERSION from these embedded checkpoints (rebuilt when either changes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from mmlab.models import BLIP2_HUB_ID, CHECKPOINTS, CLIP_HUB_ID, SBERT_CLIP_HUB_ID

OPEN_CLIP_HUB_ID = "timm/vit_base_patch32_clip_224.openai"  # open_clip's pretrained table: ViT-B-32, "openai"
BUILD_VERSION = "2"  # change it when the layout changes: older builds are rebuilt
SIZES = ("tiny", "real")
# model-00001-of-00002.safetensors (10.0 GB) and model-00002-of-00002.safetensors (5.5 GB): the first shard 65%
FIRST_SHARD_SHARE = 0.65
CLIP_TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer_config.json")  # as the embedded CLIP keeps them


@dataclass(frozen=True)
class Blip2Widths:
    """The widths a stand-in BLIP-2 is built with; `real()` gives Salesforce/blip2-opt-2.7b's config.json."""

    image_size: int = 224
    patch_size: int = 32
    vision_width: int = 32
    vision_layers: int = 2
    vision_heads: int = 2
    vision_ffn: int = 128
    qformer_width: int = 32
    qformer_layers: int = 2
    qformer_heads: int = 2
    lm_width: int = 32
    lm_layers: int = 2
    lm_heads: int = 2
    lm_ffn: int = 128
    lm_context: int = 256
    num_query_tokens: int = 32  # as the real repo: the processor puts 32 <image> tokens in every prompt
    vocab_size: int | None = None  # None: the tokenizer's length, rounded up to a multiple of 8

    @classmethod
    def real(cls) -> Blip2Widths:
        return cls(image_size=224, patch_size=14, vision_width=1408, vision_layers=39, vision_heads=16,
                   vision_ffn=6144, qformer_width=768, qformer_layers=12, qformer_heads=12, lm_width=2560,
                   lm_layers=32, lm_heads=32, lm_ffn=10240, lm_context=2048, vocab_size=50304)


def stand_ins_root() -> Path:
    return Path(os.environ.get("MMLAB_STAND_INS", Path.home() / ".cache" / "mmlab-stand-ins")).expanduser()


def build(size: str = "tiny", root: Path | None = None) -> Path:
    """The folder holding the three stand-in repos of `size` (built now unless a finished build is there)."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, not {size!r}")
    from filelock import FileLock  # huggingface_hub's own lock library

    folder = (root or stand_ins_root()) / size
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(folder.parent / f".{size}.lock"):  # several test workers may ask at once: one builds
        stamp, wanted = folder / ".complete", _build_key()
        if stamp.is_file() and stamp.read_text() == wanted:
            return folder
        shutil.rmtree(folder, ignore_errors=True)
        clip_model, clip_processor = _clip(size)
        _write_clip(folder / CLIP_HUB_ID, clip_model, clip_processor)
        _write_sentence_clip(folder / SBERT_CLIP_HUB_ID, clip_model, clip_processor)
        _write_open_clip(folder / OPEN_CLIP_HUB_ID, clip_model if size == "real" else _clip("real")[0])
        del clip_model
        blip_model, blip_processor = _blip2(Blip2Widths() if size == "tiny" else Blip2Widths.real())
        _write_blip2(folder / BLIP2_HUB_ID, blip_model, blip_processor)
        stamp.write_text(wanted)
    return folder


def _build_key() -> str:
    """BUILD_VERSION and the embedded checkpoints' files (names and sizes) the stand-ins are built from."""
    files = sorted(p for p in CHECKPOINTS.rglob("*") if p.is_file())
    return "\n".join([BUILD_VERSION, *(f"{p.relative_to(CHECKPOINTS)} {p.stat().st_size}" for p in files)])


# --- the models -----------------------------------------------------------------------------------


def _clip(size: str):
    from transformers import CLIPConfig, CLIPModel, CLIPProcessor

    processor = CLIPProcessor.from_pretrained(CHECKPOINTS / "clip")
    if size == "tiny":
        return CLIPModel.from_pretrained(CHECKPOINTS / "clip"), processor
    import torch

    torch.manual_seed(0)
    return CLIPModel(CLIPConfig()), processor  # CLIPConfig()'s defaults are ViT-B/32, as openai/clip-vit-base-patch32


def _blip2(widths: Blip2Widths):
    import torch
    from transformers import AutoTokenizer, Blip2Config, Blip2ForConditionalGeneration, Blip2Processor

    embedded = CHECKPOINTS / "blip2"
    processor = Blip2Processor.from_pretrained(embedded, num_query_tokens=widths.num_query_tokens)
    processor.image_processor.size = {"height": widths.image_size, "width": widths.image_size}
    tokenizer = AutoTokenizer.from_pretrained(embedded)
    processor.tokenizer = tokenizer
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    vocab = widths.vocab_size or len(tokenizer) + (-len(tokenizer)) % 8
    config = Blip2Config(
        vision_config={"hidden_size": widths.vision_width, "intermediate_size": widths.vision_ffn,
                       "num_hidden_layers": widths.vision_layers, "num_attention_heads": widths.vision_heads,
                       "image_size": widths.image_size, "patch_size": widths.patch_size},
        qformer_config={"hidden_size": widths.qformer_width, "intermediate_size": 4 * widths.qformer_width,
                        "num_hidden_layers": widths.qformer_layers, "num_attention_heads": widths.qformer_heads,
                        "encoder_hidden_size": widths.vision_width},
        text_config={"model_type": "opt", "vocab_size": vocab, "hidden_size": widths.lm_width,
                     "word_embed_proj_dim": widths.lm_width, "ffn_dim": widths.lm_ffn,
                     "num_hidden_layers": widths.lm_layers, "num_attention_heads": widths.lm_heads,
                     "max_position_embeddings": widths.lm_context, "bos_token_id": tokenizer.bos_token_id,
                     "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id},
        num_query_tokens=widths.num_query_tokens,
        image_token_index=image_id,
    )
    torch.manual_seed(0)
    model = Blip2ForConditionalGeneration(config)
    model.tie_weights()  # OPT's lm_head is its token table: transformers 5.0 ties them only when asked
    return model.eval(), processor


# --- the layouts ----------------------------------------------------------------------------------


def _write_clip(folder: Path, model, processor) -> None:
    """openai/clip-vit-base-patch32: config.json, model.safetensors, preprocessor_config.json and the tokenizer
    files at the top level (no processor_config.json)."""
    model.save_pretrained(folder)
    processor.image_processor.save_pretrained(folder)
    processor.tokenizer.save_pretrained(folder)  # tokenizer.json and tokenizer_config.json
    for name in CLIP_TOKENIZER_FILES[:2]:
        shutil.copy(CHECKPOINTS / "clip" / name, folder / name)


def _write_sentence_clip(folder: Path, model, processor) -> None:
    """sentence-transformers/clip-ViT-B-32: modules.json and config_sentence_transformers.json at the top, the
    transformers CLIP in 0_CLIPModel/ with its weights as pytorch_model.bin (the repo holds no safetensors file)."""
    import torch

    module = folder / "0_CLIPModel"
    model.config.save_pretrained(module)
    torch.save(model.state_dict(), module / "pytorch_model.bin")  # transformers 5 saves only safetensors
    processor.image_processor.save_pretrained(module)
    for name in CLIP_TOKENIZER_FILES:  # no tokenizer.json in the real module folder
        shutil.copy(CHECKPOINTS / "clip" / name, module / name)
    (folder / "modules.json").write_text(json.dumps(
        [{"idx": 0, "name": "0", "path": "0_CLIPModel", "type": "sentence_transformers.models.CLIPModel"}], indent=2))
    (folder / "config_sentence_transformers.json").write_text(json.dumps(
        {"__version__": {"sentence_transformers": "2.0.0", "transformers": "4.6.0", "pytorch": "1.7.1"}}, indent=2))
    (folder / "README.md").write_text("# sentence-transformers/clip-ViT-B-32 (mmlab stand-in, random or embedded weights)\n")


def _write_open_clip(folder: Path, hf_model) -> None:
    """timm/vit_base_patch32_clip_224.openai as open_clip reads it: open_clip_model.safetensors (tried before
    open_clip_pytorch_model.bin, which the real repo also holds) and open_clip_config.json."""
    from safetensors.torch import save_file
    from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

    from mmlab.interop import hf_clip_to_open_clip, open_clip_config

    folder.mkdir(parents=True)
    state = {k: v.contiguous() for k, v in hf_clip_to_open_clip(hf_model).state_dict().items()}
    save_file(state, folder / "open_clip_model.safetensors")
    config = {"model_cfg": open_clip_config(hf_model.config),  # quick_gelu: CLIPConfig()'s activation
              "preprocess_cfg": {"mean": list(OPENAI_CLIP_MEAN), "std": list(OPENAI_CLIP_STD)}}
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=2))


def _write_blip2(folder: Path, model, processor) -> None:
    """Salesforce/blip2-opt-2.7b: config.json, generation_config.json, model-0000k-of-0000n.safetensors with
    model.safetensors.index.json, preprocessor_config.json, processor_config.json (num_query_tokens) and the
    tokenizer files."""
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    model.save_pretrained(folder, max_shard_size=int(total * FIRST_SHARD_SHARE))
    processor.image_processor.save_pretrained(folder)
    processor.tokenizer.save_pretrained(folder)
    (folder / "processor_config.json").write_text(json.dumps(
        {"num_query_tokens": processor.num_query_tokens, "processor_class": "Blip2Processor"}, indent=2))
    found = sorted(p.name for p in folder.glob("model-*.safetensors"))
    if len(found) != 2 or not (folder / "model.safetensors.index.json").is_file():
        raise RuntimeError(f"{folder}: expected two safetensors shards with an index, found {found}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("size", choices=SIZES, nargs="?", default="tiny")
    parser.add_argument("--root", type=Path, default=None, help="default: $MMLAB_STAND_INS or ~/.cache/mmlab-stand-ins")
    args = parser.parse_args(argv)
    print(build(args.size, args.root))


if __name__ == "__main__":
    main()
