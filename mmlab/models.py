"""Loaders that return Hugging Face models for the current mode.

Hub mode loads the chapter's checkpoints; offline mode loads the embedded default that ships in
`mmlab/checkpoints/`. A hub id or a local folder can always be named instead. Every loader returns
the model in eval mode on the device `mmlab.setup()` chose.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path
from typing import Literal

import torch

from mmlab.mode import Setup, current_setup

CLIP_HUB_ID = "openai/clip-vit-base-patch32"
SBERT_CLIP_HUB_ID = "sentence-transformers/clip-ViT-B-32"
BLIP2_HUB_ID = "Salesforce/blip2-opt-2.7b"
CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"

# Parameter counts of the hub checkpoints, to refuse early what will not fit in memory.
KNOWN_PARAMETERS = {CLIP_HUB_ID: 151_277_313, SBERT_CLIP_HUB_ID: 151_277_313, BLIP2_HUB_ID: 3_744_761_856}


class ModelUnavailableError(RuntimeError):
    """A model that cannot be loaded here, with what to do instead."""


def embedded_path(name: Literal["clip", "blip2"]) -> Path:
    """The folder of an embedded default checkpoint (a plain Hugging Face folder)."""
    folder = CHECKPOINTS / name
    if not (folder / "model.safetensors").is_file():
        raise ModelUnavailableError(
            f"The embedded {name} checkpoint is missing from {folder}. Reinstall mmlab, or rebuild it "
            f"with `python -m mmlab.train {name}` (about 10 minutes on a laptop CPU)."
        )
    return folder


def load_clip(name: str | os.PathLike | None = None):
    """CLIP model and processor: `openai/clip-vit-base-patch32` in hub mode, the embedded CLIP offline."""
    from transformers import CLIPModel, CLIPProcessor

    setup = current_setup()
    source = _resolve(name, CLIP_HUB_ID, "clip", setup)
    dtype = _check_memory(source, setup, "CLIP")
    model = _from_pretrained(CLIPModel, source, setup, dtype=dtype).to(setup.device).eval()
    processor = _from_pretrained(CLIPProcessor, source, setup)
    _announce("CLIP", source, model, setup)
    return model, processor


def load_sentence_clip(name: str | os.PathLike | None = None):
    """sentence-transformers' CLIP: `clip-ViT-B-32` in hub mode, the embedded CLIP folder offline."""
    from sentence_transformers import SentenceTransformer

    setup = current_setup()
    source = _resolve(name, SBERT_CLIP_HUB_ID, "clip", setup)
    _check_memory(source, setup, "CLIP")
    model = _from_pretrained(SentenceTransformer, source, setup, device=setup.device).eval()
    _announce("sentence-transformers CLIP", source, model, setup)
    return model


def load_blip2(name: str | os.PathLike | None = None, *, quantize: Literal["8bit", "4bit"] | None = None):
    """BLIP-2 model and processor: `Salesforce/blip2-opt-2.7b` (fp16 on a GPU) in hub mode, the embedded one offline.

    `quantize="8bit"` or `"4bit"` loads the weights through bitsandbytes, for GPUs with less memory.
    """
    from transformers import Blip2ForConditionalGeneration, Blip2Processor

    setup = current_setup()
    source = _resolve(name, BLIP2_HUB_ID, "blip2", setup)
    kwargs: dict = {"dtype": setup.dtype}
    if quantize is not None:
        kwargs |= {"quantization_config": _quantization_config(quantize, setup), "device_map": {"": 0}}
    else:
        kwargs["dtype"] = _check_memory(source, setup, "BLIP-2")
    model = _from_pretrained(Blip2ForConditionalGeneration, source, setup, **kwargs)
    if quantize is None:
        model = model.to(setup.device)
    processor = _from_pretrained(Blip2Processor, source, setup)
    _ensure_image_tokens(model, processor)
    _announce("BLIP-2", source, model, setup)
    return model.eval(), processor


def _announce(what: str, source: str, model, setup: Setup) -> None:
    """Say which model a loader loaded: one stable line for the notebooks' output."""
    millions = sum(p.numel() for p in model.parameters()) / 1e6
    if Path(source).resolve().parent == CHECKPOINTS:
        origin = f"the embedded default mmlab/checkpoints/{Path(source).name} (trained offline on the scene world)"
    else:
        origin = f"'{source}'"
    weights = Counter()  # most weights' dtype: BLIP-2 keeps its Q-Former in float32 (transformers 5.0)
    for p in model.parameters():
        weights[p.dtype] += p.numel()
    dtype = str(weights.most_common(1)[0][0]).removeprefix("torch.")
    print(f"{what}: {origin}, {millions:.1f} M parameters, {dtype} on {setup.device}")


# --- internals ------------------------------------------------------------------------------------


def _resolve(name, hub_id: str, embedded: str, setup: Setup) -> str:
    if name is None:
        return hub_id if setup.mode == "hub" else str(embedded_path(embedded))
    text = str(name)
    if Path(text).expanduser().is_dir():
        return str(Path(text).expanduser())
    if text.startswith((".", "/", "~")) or text.count("/") > 1:
        raise ModelUnavailableError(f"No model folder at {text}. Give an existing folder or a hub id like '{hub_id}'.")
    return text


def _from_pretrained(cls, source: str, setup: Setup, **kwargs):
    try:
        if cls.__name__ == "SentenceTransformer":
            return cls(source, **kwargs)
        return cls.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as error:
        if Path(source).is_dir():
            raise ModelUnavailableError(f"Could not load {cls.__name__} from {source}: {error}") from error
        raise ModelUnavailableError(
            f"Could not load '{source}': it is not in the local Hugging Face cache and the Hub is not "
            f"reachable ({setup.mode} mode: {setup.reason}). Use the embedded default instead "
            f"(`mmlab.setup('offline')`, then call the loader with no name), or connect to the internet and "
            f"run `mmlab.setup('hub')`."
        ) from error


def checkpoint_parameters(source: str) -> int | None:
    """The parameter count a checkpoint's safetensors headers declare, before anything is loaded.

    A local folder: its files' headers. A hub id: the Hub's, through `huggingface_hub.get_safetensors_metadata`
    (a ranged read of each shard's header, no download). None where neither can be read (offline, or no
    safetensors files); hub ids then fall back to the chapter's known sizes (KNOWN_PARAMETERS).
    """
    from huggingface_hub import constants, get_safetensors_metadata
    from huggingface_hub.errors import NotASafetensorsRepoError, SafetensorsParsingError

    folder = Path(source)
    if folder.is_dir():
        from safetensors import safe_open

        total = 0
        for file in sorted(folder.glob("*.safetensors")):
            with safe_open(str(file), "pt") as handle:
                total += sum(math.prod(handle.get_slice(key).get_shape()) for key in handle.keys())  # noqa: SIM118
        return total or None
    if constants.HF_HUB_OFFLINE:
        return KNOWN_PARAMETERS.get(source)
    try:
        return sum(get_safetensors_metadata(source).parameter_count.values())
    except (OSError, NotASafetensorsRepoError, SafetensorsParsingError):  # offline, unknown repo, no headers
        return KNOWN_PARAMETERS.get(source)


def _check_memory(source: str, setup: Setup, what: str) -> torch.dtype:
    """The dtype to load `source` in: the session's, or bfloat16 on a CPU where float32 does not
    fit and bfloat16 does (BLIP-2 only: 15 GB in float32, 7.5 GB in bfloat16). Refuses, with what to do instead,
    a model that fits in neither."""
    dtype = setup.dtype
    parameters = checkpoint_parameters(source)
    memory = device_memory(setup.device)
    if parameters is None or memory is None:
        return dtype
    free = memory[0]
    needed = parameters * torch.finfo(dtype).bits // 8
    if needed < 0.9 * free:
        return dtype
    half = parameters * 2
    if what == "BLIP-2" and setup.device == "cpu" and dtype == torch.float32 and half < 0.9 * free:
        print(f"{what}: {needed / 2**30:.1f} GiB in float32 does not fit in the {free / 2**30:.1f} GiB of RAM free; "
              f"loading it in bfloat16 ({half / 2**30:.1f} GiB) instead. Generation is slower (bfloat16 matrix "
              "products are emulated on CPUs without AMX) and its words may differ slightly from float32's.")
        return torch.bfloat16
    advice = (
        "On a CUDA GPU, load it 8-bit or 4-bit with `quantize='8bit'` (`pip install bitsandbytes`); on this "
        "machine, lessons 03 to 05 run on the embedded BLIP-2 with `mmlab.setup('offline')`"
        if what == "BLIP-2" else "Free some memory (restart other notebooks), or use the embedded default with "
        "`mmlab.setup('offline')`"
    )
    raise ModelUnavailableError(
        f"{what} '{source}' needs about {needed / 2**30:.1f} GiB in {str(dtype).removeprefix('torch.')} "
        f"but the {setup.device} has {free / 2**30:.1f} GiB free. {advice}."
    )


def device_memory(device: str) -> tuple[int, int] | None:
    """(free, total) bytes of memory on `device`: the GPU's on "cuda", the RAM otherwise; None where unknown."""
    if device == "cuda":
        return torch.cuda.mem_get_info()
    try:  # Linux: MemAvailable counts the page cache the kernel would give back; "free" memory does not
        fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        return int(fields["MemAvailable"].split()[0]) * 1024, int(fields["MemTotal"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):  # not Linux (macOS has no /proc): no cheap way to ask
        return None


def _quantization_config(quantize: str, setup: Setup):
    if setup.device != "cuda":
        raise ModelUnavailableError(
            f"quantize='{quantize}' needs a CUDA GPU (this session uses {setup.device}). "
            "In Colab: Runtime > Change runtime type > GPU. Or load without quantize."
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as error:
        raise ModelUnavailableError(
            f"quantize='{quantize}' needs the bitsandbytes package: run `pip install bitsandbytes`, "
            "restart the kernel, and load again."
        ) from error
    from transformers import BitsAndBytesConfig

    if quantize == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    if quantize == "4bit":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.float16)
    raise ValueError(f"quantize must be '8bit', '4bit' or None, not {quantize!r}")


def _ensure_image_tokens(model, processor) -> None:
    """transformers 5 puts `num_query_tokens` <image> tokens in the prompt; both sides must agree on them."""
    if processor.num_query_tokens is None:
        processor.num_query_tokens = model.config.num_query_tokens
    image_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token.content)
    if model.config.image_token_index is None:
        model.config.image_token_index = image_id
    if model.config.image_token_index != image_id:
        raise ModelUnavailableError(
            f"The model's image_token_index ({model.config.image_token_index}) differs from the tokenizer's "
            f"<image> id ({image_id}): the checkpoint and its processor do not belong together."
        )
