"""The same CLIP weights in open_clip: convert a Hugging Face `CLIPModel` to an `open_clip.CLIP`.

open_clip is the library most CLIP research code uses. Building its model from a Hugging Face
checkpoint shows that the two are one architecture under different names:

    HF (transformers)                          open_clip
    vision_model.embeddings.patch_embedding    visual.conv1
    vision_model.pre_layrnorm                  visual.ln_pre
    encoder.layers.i.self_attn.{q,k,v}_proj    transformer.resblocks.i.attn.in_proj_weight (q, k, v stacked)
    encoder.layers.i.mlp.fc1 / fc2             transformer.resblocks.i.mlp.c_fc / c_proj
    encoder.layers.i.layer_norm1 / 2           transformer.resblocks.i.ln_1 / ln_2
    visual_projection.weight (P, D)            visual.proj (D, P): applied as x @ proj
    text_model.final_layer_norm                ln_final

One difference to mind: HF's tokenizer pads with <|endoftext|> (49407), open_clip's with 0. Both
models read the text embedding at the first end-of-text token, so the padding does not matter.
"""

from __future__ import annotations

import torch

QUICK_GELU = "quick_gelu"


def open_clip_config(hf_config) -> dict:
    """The open_clip model config (embed_dim, vision_cfg, text_cfg, quick_gelu) of a HF `CLIPConfig`."""
    vision, text = hf_config.vision_config, hf_config.text_config
    for tower in (vision, text):
        if tower.hidden_act not in (QUICK_GELU, "gelu"):
            raise ValueError(f"open_clip supports QuickGELU or GELU, not {tower.hidden_act!r}.")
    if vision.hidden_act != text.hidden_act:
        raise ValueError("open_clip uses one activation for both towers; this checkpoint mixes them.")
    eos = text.eos_token_id
    return {
        "embed_dim": hf_config.projection_dim,
        "quick_gelu": vision.hidden_act == QUICK_GELU,  # OpenAI's CLIP was trained with QuickGELU
        "vision_cfg": {
            "image_size": vision.image_size,
            "patch_size": vision.patch_size,
            "width": vision.hidden_size,
            "layers": vision.num_hidden_layers,
            "head_width": vision.hidden_size // vision.num_attention_heads,
            "mlp_ratio": vision.intermediate_size / vision.hidden_size,
        },
        "text_cfg": {
            "context_length": text.max_position_embeddings,
            "vocab_size": text.vocab_size,
            "width": text.hidden_size,
            "heads": text.num_attention_heads,
            "layers": text.num_hidden_layers,
            "mlp_ratio": text.intermediate_size / text.hidden_size,
            # HF pools at the first eos id; checkpoints from before transformers 4.31 say eos=2 and use argmax.
            "pool_type": "argmax" if eos == 2 else "eos",
            "eos_id": eos,
        },
    }


def hf_clip_to_open_clip(hf_model) -> torch.nn.Module:
    """An `open_clip.CLIP` with the architecture and weights of a HF `CLIPModel`, in eval mode, float32."""
    import open_clip

    config = open_clip_config(hf_model.config)
    model = open_clip.CLIP(**config)
    hf = {k: v.detach().float() for k, v in hf_model.state_dict().items()}
    state = {
        "visual.conv1.weight": hf["vision_model.embeddings.patch_embedding.weight"],
        "visual.class_embedding": hf["vision_model.embeddings.class_embedding"],
        "visual.positional_embedding": hf["vision_model.embeddings.position_embedding.weight"],
        "visual.ln_pre.weight": hf["vision_model.pre_layrnorm.weight"],
        "visual.ln_pre.bias": hf["vision_model.pre_layrnorm.bias"],
        "visual.ln_post.weight": hf["vision_model.post_layernorm.weight"],
        "visual.ln_post.bias": hf["vision_model.post_layernorm.bias"],
        "visual.proj": hf["visual_projection.weight"].T,
        "token_embedding.weight": hf["text_model.embeddings.token_embedding.weight"],
        "positional_embedding": hf["text_model.embeddings.position_embedding.weight"],
        "ln_final.weight": hf["text_model.final_layer_norm.weight"],
        "ln_final.bias": hf["text_model.final_layer_norm.bias"],
        "text_projection": hf["text_projection.weight"].T,
        "logit_scale": hf["logit_scale"],
    }
    towers = (("visual.transformer", "vision_model.encoder", config["vision_cfg"]["layers"]),
              ("transformer", "text_model.encoder", config["text_cfg"]["layers"]))
    for theirs, ours, layers in towers:
        for i in range(layers):
            state |= _block(hf, f"{ours}.layers.{i}", f"{theirs}.resblocks.{i}")
    model.load_state_dict(state)  # strict: every weight of open_clip's model is set
    open_clip.model.set_model_preprocess_cfg(model, _preprocess_cfg(hf_model.config))
    return model.eval()


def _block(hf: dict, src: str, dst: str) -> dict:
    attn = f"{src}.self_attn"
    return {
        f"{dst}.ln_1.weight": hf[f"{src}.layer_norm1.weight"],
        f"{dst}.ln_1.bias": hf[f"{src}.layer_norm1.bias"],
        f"{dst}.attn.in_proj_weight": torch.cat([hf[f"{attn}.{p}_proj.weight"] for p in "qkv"]),  # (3D, D)
        f"{dst}.attn.in_proj_bias": torch.cat([hf[f"{attn}.{p}_proj.bias"] for p in "qkv"]),
        f"{dst}.attn.out_proj.weight": hf[f"{attn}.out_proj.weight"],
        f"{dst}.attn.out_proj.bias": hf[f"{attn}.out_proj.bias"],
        f"{dst}.ln_2.weight": hf[f"{src}.layer_norm2.weight"],
        f"{dst}.ln_2.bias": hf[f"{src}.layer_norm2.bias"],
        f"{dst}.mlp.c_fc.weight": hf[f"{src}.mlp.fc1.weight"],
        f"{dst}.mlp.c_fc.bias": hf[f"{src}.mlp.fc1.bias"],
        f"{dst}.mlp.c_proj.weight": hf[f"{src}.mlp.fc2.weight"],
        f"{dst}.mlp.c_proj.bias": hf[f"{src}.mlp.fc2.bias"],
    }


def _preprocess_cfg(hf_config) -> dict:
    from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

    return {"size": hf_config.vision_config.image_size, "mode": "RGB", "mean": tuple(OPENAI_CLIP_MEAN),
            "std": tuple(OPENAI_CLIP_STD), "interpolation": "bicubic", "resize_mode": "shortest", "fill_color": 0}


def open_clip_transform(model):
    """open_clip's own evaluation preprocessing for `model` (resize, centre crop, tensor, normalize)."""
    import open_clip
    from open_clip.transform import PreprocessCfg, image_transform_v2

    cfg = PreprocessCfg(**open_clip.model.get_model_preprocess_cfg(model))
    return image_transform_v2(cfg, is_train=False)


def open_clip_tokenizer(model):
    """open_clip's tokenizer for `model`: OpenAI CLIP's byte-level BPE, padding with 0 to the context length."""
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer(context_length=model.context_length)
