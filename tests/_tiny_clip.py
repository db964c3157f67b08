"""A tiny random CLIP with the real CLIP tokenizer (from the embedded checkpoint), for fast tests."""

import torch
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

from mmlab.models import embedded_path


def tiny_clip(*, image_size: int = 64, patch_size: int = 16, seed: int = 0) -> tuple[CLIPModel, CLIPProcessor]:
    torch.manual_seed(seed)
    tower = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
    config = CLIPConfig(
        text_config={**tower, "vocab_size": 49408, "max_position_embeddings": 77},
        vision_config={**tower, "image_size": image_size, "patch_size": patch_size},
        projection_dim=24,
    )
    model = CLIPModel(config).eval()
    image_processor = CLIPImageProcessor(size={"shortest_edge": image_size},
                                         crop_size={"height": image_size, "width": image_size})
    tokenizer = CLIPTokenizer.from_pretrained(embedded_path("clip"))
    return model, CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)
