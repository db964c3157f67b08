"""Writing a trained model as a genuine Hugging Face folder, small enough to ship inside the package."""

from __future__ import annotations

import json
from pathlib import Path


def save_checkpoint(model, processor, folder: Path) -> Path:
    """Save as a genuine Hugging Face folder: safetensors in float16, the processor beside it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.half().save_pretrained(folder, safe_serialization=True)
    model.float()
    # Stored in float16 to halve the files; loaded as float32 by default, which CPUs run fastest.
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"dtype": "float32"}, indent=2) + "\n")
    processor.save_pretrained(folder)
    _slim_bpe_files(folder)
    return folder


def _slim_bpe_files(folder: Path) -> None:
    """Store a CLIP tokenizer as vocab.json + merges.txt (1.4 MB) rather than tokenizer.json (3.6 MB).

    CLIPTokenizer rebuilds its normalizer and pre-tokenizer from these two files, as for the hub's folder.
    """
    config = json.loads((folder / "tokenizer_config.json").read_text())
    if config.get("tokenizer_class") != "CLIPTokenizer":
        return
    model = json.loads((folder / "tokenizer.json").read_text())["model"]
    (folder / "vocab.json").write_text(json.dumps(model["vocab"], ensure_ascii=False, separators=(",", ":")))
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    (folder / "tokenizer.json").unlink()
