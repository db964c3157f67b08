"""Recipe for the embedded BLIP-2, in the chapter's three steps.

1. A pretrained vision encoder: our CLIP's vision tower (as BLIP-2 uses EVA-CLIP's), given strong position
   embeddings (see strengthen_positions), briefly adapted, then frozen.
2. A small OPT-style language model is pretrained on text alone, then frozen. Its texts (captions,
   questions and answers, chats) follow a *prefix* of 13 word embeddings that spell the scene, third by
   third ("two large red circle left none none none none small blue square right"), blurred with noise: so the frozen
   language model already knows how to talk about a scene given a soft prompt in its own word space.
3. Bridging: only the Q-Former, its learned queries and the projection train. The language-model
   loss flows through the frozen language model; two more losses pull each projected query toward the
   word embedding of its prefix slot and make it nearest to that word, which tells each query which
   fact of the image to carry.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import (
    Blip2Config,
    Blip2ForConditionalGeneration,
    Blip2Processor,
    BlipImageProcessor,
    GPT2Tokenizer,
    OPTForCausalLM,
)

from mmlab.blip2 import format_prompt
from mmlab.data.scenes import (
    COLORS,
    NUMBERS,
    POSITIONS,
    SHAPES,
    SIZES,
    Scene,
    canonical_caption,
    questions,
    sample_scene,
    vocabulary_sentences,
)
from mmlab.tokenizers import IMAGE_TOKEN, train_opt_style_tokenizer
from mmlab.train.common import (
    CLIP_MEAN,
    CLIP_STD,
    MAX_OBJECTS,
    Schedule,
    save_checkpoint,
    scene_batch,
    seed_everything,
    set_lr,
    warm_up_vision,
)

NUM_QUERY_TOKENS = 1 + 4 * MAX_OBJECTS  # count, then size, colour, shape and position of each object slot


@dataclass
class Blip2Recipe:
    seed: int = 0
    vision_width: int = 128
    vision_layers: int = 4
    qformer_width: int = 128
    qformer_layers: int = 3
    lm_width: int = 192
    lm_layers: int = 4
    lm_context: int = 256  # tokens, image queries included
    vocab_size: int = 4096
    vision_steps: int = 300  # adapting the CLIP vision tower it starts from (see copy_clip_vision)
    vision_lr: float = 3e-4
    position_scale: float = 2.0  # see strengthen_positions
    lm_steps: int = 400
    lm_lr: float = 1e-3
    prefix_noise: float = 0.7  # noise std relative to the prefix embeddings' std
    bridge_steps: int = 800  # the bridge's metrics stop improving after about 400 steps
    bridge_lr: float = 1e-3
    align_weight: float = 1.0
    word_choice_weight: float = 1.0  # see word_choice_loss
    query_init_std: float = 0.02  # transformers starts the queries at zero: all alike, they stay alike
    qformer_dropout: float = 0.0
    batch: int = 64

    @classmethod
    def short(cls) -> Blip2Recipe:
        return cls(vision_steps=4, lm_steps=6, bridge_steps=6, batch=16)


def build_tokenizer(recipe: Blip2Recipe) -> GPT2Tokenizer:
    rng = random.Random(recipe.seed)
    scene_text = []
    for _ in range(2000):
        scene = sample_scene(rng)
        scene_text.append(canonical_caption(scene))
        scene_text += [f"{format_prompt(q.question)} {q.answer}." for q in questions(scene, rng)]
    return train_opt_style_tokenizer(scene_text + vocabulary_sentences(), vocab_size=recipe.vocab_size)


def build_blip2(recipe: Blip2Recipe) -> tuple[Blip2ForConditionalGeneration, Blip2Processor]:
    tokenizer = build_tokenizer(recipe)
    vocab = len(tokenizer)
    config = Blip2Config(
        vision_config=dict(
            hidden_size=recipe.vision_width, intermediate_size=4 * recipe.vision_width,
            num_hidden_layers=recipe.vision_layers, num_attention_heads=4, image_size=224, patch_size=32,
            hidden_act="quick_gelu", layer_norm_eps=1e-5,  # as CLIP's vision tower, which it starts from
        ),
        qformer_config=dict(
            hidden_size=recipe.qformer_width, intermediate_size=4 * recipe.qformer_width,
            num_hidden_layers=recipe.qformer_layers, num_attention_heads=4,
            encoder_hidden_size=recipe.vision_width, cross_attention_frequency=1,
            hidden_dropout_prob=recipe.qformer_dropout, attention_probs_dropout_prob=recipe.qformer_dropout,
        ),
        text_config=dict(
            model_type="opt", vocab_size=vocab + (-vocab) % 8, hidden_size=recipe.lm_width,
            word_embed_proj_dim=recipe.lm_width, ffn_dim=4 * recipe.lm_width,
            num_hidden_layers=recipe.lm_layers, num_attention_heads=4,
            max_position_embeddings=recipe.lm_context, dropout=0.0, attention_dropout=0.0,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        num_query_tokens=NUM_QUERY_TOKENS,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
    )
    torch.manual_seed(recipe.seed)
    model = Blip2ForConditionalGeneration(config)
    with torch.no_grad():
        model.query_tokens.normal_(0.0, recipe.query_init_std)
    image_processor = BlipImageProcessor(
        size={"height": 224, "width": 224}, image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD)
    )
    processor = Blip2Processor(image_processor, tokenizer, num_query_tokens=NUM_QUERY_TOKENS)
    return model, processor


# --- texts ----------------------------------------------------------------------------------------


def prefix_words(scene: Scene) -> list[str]:
    """The 13 words that spell a scene: the count, then size, colour, shape and position of the object in
    the left, the middle and the right third ("none" x 4 for an empty third).

    Slots by region, not by rank: the query for "the left third" can learn to look there, whereas "the
    second object from the left" would make each query first find and count all the objects.
    """
    words = [NUMBERS[scene.count]]
    for third in POSITIONS:
        o = next((o for o in scene.objects if o.position == third), None)
        words += [o.size, o.color, o.shape, o.position] if o else ["none"] * 4
    return words


def training_text(scene: Scene, rng: random.Random) -> tuple[str, str]:
    """A (prompt, target) pair: a caption, a question, or a question after earlier turns."""
    kind = rng.random()
    if kind < 0.35:
        return "", canonical_caption(scene)
    qas = questions(scene, rng)
    rng.shuffle(qas)
    history = [(q.question, q.answer) for q in qas[: rng.randint(0, 2)]] if kind > 0.75 else []
    last = qas[len(history)] if len(history) < len(qas) else qas[-1]
    return format_prompt(last.question, history), " " + last.answer


def encode_batch(tokenizer, pairs: list[tuple[str, str]], num_queries: int, image_token_id: int):
    """Token ids [image x Q][</s> prompt][target </s>], right-padded, with labels on the target only."""
    rows, labels = [], []
    for prompt, target in pairs:
        prompt_ids = tokenizer(prompt).input_ids  # starts with </s>, OPT's BOS
        target_ids = tokenizer(target, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
        rows.append([image_token_id] * num_queries + prompt_ids + target_ids)
        labels.append([-100] * (num_queries + len(prompt_ids)) + target_ids)
    width = max(map(len, rows))
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    label_ids = torch.tensor([r + [-100] * (width - len(r)) for r in labels])
    attention = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    return input_ids, attention, label_ids


def prefix_ids(word_ids: dict[str, int], scenes: list[Scene]) -> torch.Tensor:
    """(B, Q) token ids of each scene's prefix words; `word_ids` from `prefix_vocabulary`."""
    return torch.tensor([[word_ids[w] for w in prefix_words(s)] for s in scenes])


def prefix_vocabulary(tokenizer) -> dict[str, int]:
    """The token id of every word a prefix can hold (each is one token, with its leading space)."""
    words = {*NUMBERS, *SIZES, *COLORS, *SHAPES, *POSITIONS, "none"}
    ids = {w: tokenizer(" " + w, add_special_tokens=False).input_ids for w in words}
    if any(len(i) != 1 for i in ids.values()):
        raise ValueError(f"every prefix word must be one token for this tokenizer: {ids}")
    return {w: i[0] for w, i in ids.items()}


def copy_clip_vision(blip_vision: nn.Module, clip_vision: nn.Module) -> None:
    """Start BLIP-2's vision encoder from a CLIP vision tower, as BLIP-2 starts from EVA-CLIP's.

    The layers map one to one (q/k/v fused into `qkv`, `out_proj` named `projection`). CLIP's extra
    `pre_layrnorm` has no slot in BLIP-2's encoder: a short supervised warm-up adapts the copy to its absence.
    """
    c = clip_vision.state_dict()
    state = {
        "embeddings.class_embedding": c["embeddings.class_embedding"].view(1, 1, -1),
        "embeddings.position_embedding": c["embeddings.position_embedding.weight"].unsqueeze(0),
        "embeddings.patch_embedding.weight": c["embeddings.patch_embedding.weight"],
        "embeddings.patch_embedding.bias": torch.zeros(c["embeddings.patch_embedding.weight"].shape[0]),
        "post_layernorm.weight": c["post_layernorm.weight"],
        "post_layernorm.bias": c["post_layernorm.bias"],
    }
    for i in range(len(clip_vision.encoder.layers)):
        src, dst = f"encoder.layers.{i}.", f"encoder.layers.{i}."
        for kind in ("weight", "bias"):
            state[f"{dst}self_attn.qkv.{kind}"] = torch.cat(
                [c[f"{src}self_attn.{n}_proj.{kind}"] for n in ("q", "k", "v")]
            )
            state[f"{dst}self_attn.projection.{kind}"] = c[f"{src}self_attn.out_proj.{kind}"]
            for name in ("layer_norm1", "layer_norm2", "mlp.fc1", "mlp.fc2"):
                state[f"{dst}{name}.{kind}"] = c[f"{src}{name}.{kind}"]
    blip_vision.load_state_dict(state)


def strengthen_positions(vision: nn.Module, pixels: torch.Tensor, scale: float) -> None:
    """Add a strong random code to each position embedding, `scale` times the patch embeddings' spread.

    Our CLIP's tower ends with position embeddings about 0.5% the size of its patch embeddings: its patch
    tokens barely know where they are, and the Q-Former's cross-attention cannot pick out "the left third"
    (it spreads evenly over the image, and every object's attributes blur together). With the code added
    before the adaptation, the tokens carry their place, and queries learn to look at one region in a
    hundred steps or so.
    """
    with torch.no_grad():
        spread = vision.embeddings.patch_embedding(pixels).std()
        vision.embeddings.position_embedding += torch.randn_like(vision.embeddings.position_embedding) * scale * spread


def word_choice_loss(soft: torch.Tensor, words: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of choosing each prefix slot's word among the prefix vocabulary by nearness.

    soft (B, Q, D): projected queries; words (B, Q) indices into candidates (V, D), the word embeddings.
    The MSE pull alone lets a query sit between two colours; this asks it to be nearest to the right one.
    """
    distance = torch.cdist(soft, candidates.expand(soft.shape[0], -1, -1)).pow(2)  # (B, Q, V)
    logits = -distance / candidates.pow(2).sum(-1).mean()
    return nn.functional.cross_entropy(logits.flatten(0, 1), words.flatten())


def answer_loss(lm: OPTForCausalLM, embeds: torch.Tensor, attention: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The causal-LM loss of `lm(inputs_embeds=..., labels=...)`, with logits computed only where a label is.

    The vocabulary head over every position would cost most of a training step; answers are a few tokens.
    """
    hidden = lm.model.decoder(inputs_embeds=embeds, attention_mask=attention).last_hidden_state  # (B, T, D)
    targets = labels[:, 1:]  # position t predicts token t + 1
    keep = targets != -100
    logits = lm.lm_head(hidden[:, :-1][keep])  # (K, V) for the K labelled tokens
    return nn.functional.cross_entropy(logits, targets[keep])


# --- stages ---------------------------------------------------------------------------------------


def pretrain_language_model(lm: OPTForCausalLM, tokenizer, recipe: Blip2Recipe, rng: random.Random,
                            image_token_id: int, progress: bool) -> list[float]:
    """Text-only pretraining, each text behind a noisy prefix of its scene's words."""
    optimizer = torch.optim.AdamW(lm.parameters(), lr=recipe.lm_lr, weight_decay=0.01)
    schedule = Schedule(recipe.lm_lr, recipe.lm_steps)
    embed = lm.get_input_embeddings()
    word_ids = prefix_vocabulary(tokenizer)
    losses = []
    bar = tqdm(range(recipe.lm_steps), desc="OPT text pretraining", disable=not progress)
    for step in bar:
        set_lr(optimizer, schedule(step))
        scenes = [sample_scene(rng) for _ in range(recipe.batch)]
        pairs = [training_text(s, rng) for s in scenes]
        input_ids, attention, labels = encode_batch(tokenizer, pairs, NUM_QUERY_TOKENS, image_token_id)
        embeds = embed(input_ids.masked_fill(input_ids == image_token_id, 0))  # (B, T, D)
        prefix = embed(prefix_ids(word_ids, scenes))  # (B, Q, D)
        prefix = prefix + torch.randn_like(prefix) * recipe.prefix_noise * prefix.detach().std()
        embeds = torch.cat([prefix, embeds[:, NUM_QUERY_TOKENS:]], dim=1)
        loss = answer_loss(lm, embeds, attention, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return losses


def project_queries(model: Blip2ForConditionalGeneration, pixels: torch.Tensor) -> torch.Tensor:
    """Image -> frozen ViT -> Q-Former queries -> projection: (B, Q, D_lm), as BLIP-2's forward does."""
    with torch.no_grad():
        image_embeds = model.vision_model(pixel_values=pixels).last_hidden_state  # (B, N, D_v)
    queries = model.query_tokens.expand(pixels.shape[0], -1, -1)  # (B, Q, D_q)
    out = model.qformer(query_embeds=queries, encoder_hidden_states=image_embeds).last_hidden_state
    return model.language_projection(out)  # (B, Q, D_lm)


def bridge(model: Blip2ForConditionalGeneration, processor: Blip2Processor, recipe: Blip2Recipe,
           rng: random.Random, progress: bool) -> list[float]:
    """Train only the Q-Former, the queries and the projection between a frozen ViT and a frozen LM."""
    trainable = [model.query_tokens, *model.qformer.parameters(), *model.language_projection.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    for p in trainable:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(trainable, lr=recipe.bridge_lr, weight_decay=0.01)
    schedule = Schedule(recipe.bridge_lr, recipe.bridge_steps)
    tokenizer, image_id = processor.tokenizer, model.config.image_token_index
    embed = model.language_model.get_input_embeddings()
    word_ids = prefix_vocabulary(tokenizer)
    vocabulary = torch.tensor(sorted(word_ids.values()))  # (V,) the words a prefix can hold
    losses = []
    bar = tqdm(range(recipe.bridge_steps), desc="BLIP-2 bridging (Q-Former)", disable=not progress)
    for step in bar:
        set_lr(optimizer, schedule(step))
        scenes, pixels = scene_batch(rng, recipe.batch)
        pairs = [training_text(s, rng) for s in scenes]
        input_ids, attention, labels = encode_batch(tokenizer, pairs, NUM_QUERY_TOKENS, image_id)
        soft = project_queries(model, pixels)  # (B, Q, D)
        with torch.no_grad():
            prefix = prefix_ids(word_ids, scenes)  # (B, Q)
            words = embed(prefix)  # (B, Q, D) the prefix the LM learned to read
            text = embed(input_ids[:, NUM_QUERY_TOKENS:])
        lm_loss = answer_loss(model.language_model, torch.cat([soft, text], dim=1), attention, labels)
        align = nn.functional.mse_loss(soft, words) / words.pow(2).mean()
        loss = lm_loss + recipe.align_weight * align
        if recipe.word_choice_weight:
            choice = word_choice_loss(soft, torch.bucketize(prefix, vocabulary), embed(vocabulary).detach())
            loss = loss + recipe.word_choice_weight * choice
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(lm_loss.item())
        bar.set_postfix(lm_loss=f"{lm_loss.item():.3f}", align=f"{align.item():.3f}")
    for p in model.parameters():
        p.requires_grad_(True)
    return losses


def train_blip2(recipe: Blip2Recipe, clip_vision: nn.Module, out: Path | None = None, progress: bool = True):
    """Run the three stages, starting the vision encoder from `clip_vision` (a trained CLIP's `vision_model`).

    Saves to `out` when given. Returns the model, processor and loss curves.
    """
    seed_everything(recipe.seed)
    rng = random.Random(recipe.seed)
    model, processor = build_blip2(recipe)
    model.train()
    copy_clip_vision(model.vision_model, clip_vision)
    strengthen_positions(model.vision_model, scene_batch(rng, 16)[1], recipe.position_scale)
    image_id = model.config.image_token_index
    curves = {
        "vision": warm_up_vision(
            model.vision_model, recipe.vision_width, recipe.vision_steps, recipe.batch, recipe.vision_lr, rng,
            "BLIP-2 vision adaptation", progress, seed_filters=False,
        ),
        "language": pretrain_language_model(
            model.language_model, processor.tokenizer, recipe, rng, image_id, progress
        ),
    }
    curves["bridge"] = bridge(model, processor, recipe, rng, progress)
    model.eval()
    if out is not None:
        save_checkpoint(model, processor, out)
    return model, processor, curves
