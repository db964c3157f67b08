"""Recipe for the embedded BLIP-2, in the chapter's three steps.

1. A pretrained vision encoder: our CLIP's vision tower (as BLIP-2 uses EVA-CLIP's), given strong position
   embeddings (see strengthen_positions), briefly adapted, then frozen.
2. A small OPT-style language model is pretrained on text alone, then frozen. Its texts (captions,
   questions and answers, chats) follow a *prefix* of word embeddings that spell the scene (`mmlab.prefix`), third by
   third ("two large red circle left none none none none small blue square right"), blurred with noise: so the frozen
   language model already knows how to talk about a scene given a soft prompt in its own word space. First
   it learns to find which object a word belongs to (see binding_batch), then the whole mix.
3. Bridging: only the Q-Former, its learned queries and the projection train. The language-model
   loss flows through the frozen language model; two more losses pull each projected query toward the
   word embedding of its prefix slot and make it nearest to that word, which tells each query which
   fact of the image to carry.

Step 2 uses no image, so `train_blip2` runs it first: `python -m mmlab.train all` pretrains the language model
while the CLIP whose vision tower step 1 starts from is still training, in a second process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import (
    Blip2Config,
    Blip2ForConditionalGeneration,
    Blip2Processor,
    BlipImageProcessor,
    OPTForCausalLM,
)
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from mmlab.blip2 import project_queries
from mmlab.data.pixels import scene_batch
from mmlab.data.scenes import IMAGE_SIZE, MAX_OBJECTS, PATCH, Scene, sample_scene
from mmlab.mode import seed_everything
from mmlab.prefix import PREFIX_LENGTH, Text, encode_batch, prefix_ids, prefix_vocabulary
from mmlab.tokenization import IMAGE_TOKEN
from mmlab.train.checkpoint import save_checkpoint
from mmlab.train.stage import Schedule, set_lr, stage_rng
from mmlab.train.texts import TextMix, binding_text, build_tokenizer, training_text
from mmlab.train.warmup import WarmUp, warm_up_vision


@dataclass
class Blip2Recipe:
    seed: int = 0
    image_size: int = IMAGE_SIZE
    patch_size: int = PATCH
    vision_width: int = 128
    vision_layers: int = 4
    vision_heads: int = 4
    qformer_width: int = 128
    qformer_layers: int = 3
    qformer_heads: int = 4
    lm_width: int = 192
    lm_layers: int = 4
    lm_heads: int = 4
    lm_init_std: float = 0.1  # OPT's 0.02 kept the look-up of which object a word belongs to from starting
    lm_context: int = 256  # tokens, image queries included
    num_query_tokens: int = PREFIX_LENGTH  # one per prefix word
    vocab_size: int = 4096
    tokenizer_scenes: int = 6000  # scenes whose training texts the tokenizer learns from
    vision_steps: int = 300  # adapting the CLIP vision tower it starts from (see copy_clip_vision)
    vision_lr: float = 3e-4
    position_scale: float = 2.0  # see strengthen_positions
    lm_binding_steps: int = 1600  # first: one question per text, about two or three objects (see binding_batch)
    lm_steps: int = 1000  # then: the full mix of texts
    lm_binding_share: float = 0.3  # of those later steps: binding batches, so the look-up is kept
    lm_lr: float = 3e-4  # at 1e-3 the look-up was not learnt
    lm_buckets: int = 4  # texts drawn this many batches at a time and batched by length (see length_batches)
    prefix_noise: float = 0.5  # noise std relative to the prefix embeddings' std
    loss_per_text: bool = True  # each text counts alike, however many tokens (see answer_loss)
    texts: TextMix = field(default_factory=TextMix)
    bridge_steps: int = 800  # at 500, two- and three-object captions were still improving (docs/embedded-default.md)
    bridge_lr: float = 1e-3
    align_weight: float = 1.0
    word_choice_weight: float = 1.0  # see word_choice_loss
    query_init_std: float = 0.02  # transformers starts at zero: identical queries (lesson 07)
    qformer_dropout: float = 0.0
    weight_decay: float = 0.01
    batch: int = 64

    @classmethod
    def short(cls) -> Blip2Recipe:
        return cls(vision_steps=4, lm_binding_steps=3, lm_steps=6, bridge_steps=6, batch=16, tokenizer_scenes=200)


def build_blip2(recipe: Blip2Recipe, tokenizer) -> tuple[Blip2ForConditionalGeneration, Blip2Processor]:
    """A randomly initialized BLIP-2 (CLIP-like vision tower, Q-Former, OPT) and its processor, for `tokenizer`
    (an OPT-style tokenizer: `build_tokenizer` makes the recipe's own)."""
    image_processor = BlipImageProcessor(
        size={"height": recipe.image_size, "width": recipe.image_size},
        image_mean=list(OPENAI_CLIP_MEAN), image_std=list(OPENAI_CLIP_STD),
    )
    processor = Blip2Processor(image_processor, tokenizer, num_query_tokens=recipe.num_query_tokens)
    tokenizer = processor.tokenizer  # with <image> added if it lacked it
    vocab = len(tokenizer)
    config = Blip2Config(
        vision_config={
            "hidden_size": recipe.vision_width, "intermediate_size": 4 * recipe.vision_width,
            "num_hidden_layers": recipe.vision_layers, "num_attention_heads": recipe.vision_heads,
            "image_size": recipe.image_size, "patch_size": recipe.patch_size,
            "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5,  # as CLIP's vision tower, which it starts from
        },
        qformer_config={
            "hidden_size": recipe.qformer_width, "intermediate_size": 4 * recipe.qformer_width,
            "num_hidden_layers": recipe.qformer_layers, "num_attention_heads": recipe.qformer_heads,
            "encoder_hidden_size": recipe.vision_width, "cross_attention_frequency": 1,
            "hidden_dropout_prob": recipe.qformer_dropout, "attention_probs_dropout_prob": recipe.qformer_dropout,
        },
        text_config={
            "model_type": "opt", "vocab_size": vocab + (-vocab) % 8, "hidden_size": recipe.lm_width,
            "word_embed_proj_dim": recipe.lm_width, "ffn_dim": 4 * recipe.lm_width,
            "num_hidden_layers": recipe.lm_layers, "num_attention_heads": recipe.lm_heads,
            "max_position_embeddings": recipe.lm_context, "dropout": 0.0, "attention_dropout": 0.0,
            "init_std": recipe.lm_init_std,
            "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        num_query_tokens=recipe.num_query_tokens,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
    )
    torch.manual_seed(recipe.seed)
    model = Blip2ForConditionalGeneration(config)
    with torch.no_grad():
        model.query_tokens.normal_(0.0, recipe.query_init_std)
    return model, processor


def recipe_tokenizer(recipe: Blip2Recipe):
    """The recipe's own tokenizer (trained on English prose and the recipe's texts)."""
    return build_tokenizer(recipe.seed, recipe.vocab_size, recipe.tokenizer_scenes, recipe.texts)


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


def answer_loss(lm: OPTForCausalLM, embeds: torch.Tensor, attention: torch.Tensor, labels: torch.Tensor,
                per_text: bool = True) -> torch.Tensor:
    """The causal-LM loss of `lm(inputs_embeds=..., labels=...)`, with logits computed only where a label is.

    The vocabulary head over every position would cost most of a training step; answers are a few tokens.
    `per_text`: average each text's tokens first, then the texts, so a one-word answer counts as much as a
    fifteen-token caption (averaged over all tokens, captions would take most of the gradient).
    """
    hidden = lm.model.decoder(inputs_embeds=embeds, attention_mask=attention).last_hidden_state  # (B, T, D)
    targets = labels[:, 1:]  # position t predicts token t + 1
    keep = targets != -100  # (B, T - 1)
    logits = lm.lm_head(hidden[:, :-1][keep])  # (K, V) for the K labelled tokens
    if not per_text:
        return nn.functional.cross_entropy(logits, targets[keep])
    token_losses = nn.functional.cross_entropy(logits, targets[keep], reduction="none")  # (K,)
    rows = keep.nonzero()[:, 0]  # the text each labelled token belongs to
    per_row = torch.zeros(len(keep), dtype=token_losses.dtype, device=token_losses.device)
    per_row = per_row.index_add(0, rows, token_losses)  # (B,)
    return (per_row / keep.sum(dim=1).clamp(min=1)).mean()


# --- stages ---------------------------------------------------------------------------------------


def text_scene(rng, n_objects: int | None = None) -> Scene:
    """A scene for the language model's text: any colour with any shape.

    Only images keep HELD_OUT_COMBOS back (the vision tower and the bridge never see them), as a real language
    model has read every such pair. Kept out of its text as well, the pairs were answered by elimination, not
    read: from the true prefix, colour questions about three-object scenes were right 100% of the time without
    a held-out pair and 65% with one.
    """
    return sample_scene(rng, n_objects=n_objects, split="any")


def binding_batch(rng, recipe: Blip2Recipe) -> list[tuple[Scene, Text]]:
    """A `binding_text` for each of `batch` two- and three-object scenes.

    Mixed in with captions and one-object scenes from the start, the look-up they teach was not learnt in
    1,500 steps; asked alone first, it is.
    """
    scenes = [text_scene(rng, n_objects=rng.randint(2, MAX_OBJECTS)) for _ in range(recipe.batch)]
    return [(s, binding_text(s, rng, recipe.texts)) for s in scenes]


def length_batches(rng, recipe: Blip2Recipe, tokenizer) -> list[list[tuple[Scene, Text]]]:
    """`lm_buckets` batches of the full mix, texts grouped by token count, in random order.

    A batch is as wide as its longest text: drawn at random, half of it was padding.
    """
    scenes = [text_scene(rng) for _ in range(recipe.batch * recipe.lm_buckets)]
    pairs = [(s, training_text(s, rng, recipe.texts)) for s in scenes]
    pairs.sort(key=lambda p: len(tokenizer("".join(a + b for a, b in p[1])).input_ids))
    batches = [pairs[k * recipe.batch:(k + 1) * recipe.batch] for k in range(recipe.lm_buckets)]
    rng.shuffle(batches)
    return batches


def pretrain_language_model(lm: OPTForCausalLM, tokenizer, recipe: Blip2Recipe, image_token_id: int,
                            progress: bool = True) -> list[float]:
    """Text-only pretraining, each text behind a noisy prefix of its scene's words: `binding_batch`es, then
    the full mix in `length_batches` with a share of binding batches."""
    rng = stage_rng(recipe.seed, "language")
    optimizer = torch.optim.AdamW(lm.parameters(), lr=recipe.lm_lr, weight_decay=recipe.weight_decay)
    steps = recipe.lm_binding_steps + recipe.lm_steps
    schedule = Schedule(recipe.lm_lr, steps)
    embed = lm.get_input_embeddings()
    word_ids = prefix_vocabulary(tokenizer)
    q = recipe.num_query_tokens
    losses, queue = [], []
    bar = tqdm(range(steps), desc="OPT text pretraining", disable=not progress)
    for step in bar:
        set_lr(optimizer, schedule(step))
        if step < recipe.lm_binding_steps or rng.random() < recipe.lm_binding_share:
            batch = binding_batch(rng, recipe)
        else:
            queue = queue or length_batches(rng, recipe, tokenizer)
            batch = queue.pop()
        scenes, texts = [s for s, _ in batch], [t for _, t in batch]
        input_ids, attention, labels = encode_batch(tokenizer, texts, q, image_token_id)
        embeds = embed(input_ids[:, q:])  # (B, T - Q, D) the text after the image placeholders
        prefix = embed(prefix_ids(word_ids, scenes))  # (B, Q, D)
        prefix = prefix + torch.randn_like(prefix) * recipe.prefix_noise * prefix.detach().std()
        loss = answer_loss(lm, torch.cat([prefix, embeds], dim=1), attention, labels, recipe.loss_per_text)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return losses


@contextmanager
def train_only(model: nn.Module, trainable: Sequence[nn.Parameter]) -> Iterator[None]:
    """Freeze every parameter of `model` but `trainable`; on leaving (even by an exception) restore the flags
    it found."""
    found = [(p, p.requires_grad) for p in model.parameters()]
    keep = {id(p) for p in trainable}
    try:
        for p, _ in found:
            p.requires_grad_(id(p) in keep)
        yield
    finally:
        for p, flag in found:
            p.requires_grad_(flag)


def bridge_losses(model: Blip2ForConditionalGeneration, processor: Blip2Processor, scenes: Sequence[Scene],
                  pixels: torch.Tensor, texts: Sequence[Text], recipe: Blip2Recipe) -> dict[str, torch.Tensor]:
    """One bridging step's losses on a batch of scenes, their pixels (B, 3, H, W) and training texts.

    "lm": the frozen language model's loss on each text, read after the projected queries (the loss BLIP-2's
    generative stage trains with); "align": the projected queries' distance to the prefix words the language
    model learned to read; "choice": `word_choice_loss` (only when its weight is not zero); "total": their
    weighted sum, the one to minimize. Inputs move to the model's device.
    """
    device, q = model.device, recipe.num_query_tokens
    embed = model.language_model.get_input_embeddings()
    word_ids = prefix_vocabulary(processor.tokenizer)
    input_ids, attention, labels = (t.to(device) for t in encode_batch(
        processor.tokenizer, texts, q, model.config.image_token_index))
    soft = project_queries(model, pixels.to(device))  # (B, Q, D)
    with torch.no_grad():
        prefix = prefix_ids(word_ids, scenes).to(device)  # (B, Q)
        words = embed(prefix)  # (B, Q, D) the prefix the LM learned to read
        text = embed(input_ids[:, q:])
    losses = {"lm": answer_loss(model.language_model, torch.cat([soft, text], dim=1), attention, labels,
                                recipe.loss_per_text)}
    losses["align"] = nn.functional.mse_loss(soft, words) / words.pow(2).mean()
    losses["total"] = losses["lm"] + recipe.align_weight * losses["align"]
    if recipe.word_choice_weight:
        vocabulary = torch.tensor(sorted(word_ids.values()), device=device)  # (V,) the words a prefix can hold
        losses["choice"] = word_choice_loss(soft, torch.bucketize(prefix, vocabulary), embed(vocabulary).detach())
        losses["total"] = losses["total"] + recipe.word_choice_weight * losses["choice"]
    return losses


def bridge(model: Blip2ForConditionalGeneration, processor: Blip2Processor, recipe: Blip2Recipe,
           progress: bool = True) -> list[float]:
    """Train only the Q-Former, the queries and the projection between a frozen ViT and a frozen LM.

    Returns the language-model loss of every step.
    """
    rng = stage_rng(recipe.seed, "bridge")
    trainable = [model.query_tokens, *model.qformer.parameters(), *model.language_projection.parameters()]
    optimizer = torch.optim.AdamW(trainable, lr=recipe.bridge_lr, weight_decay=recipe.weight_decay)
    schedule = Schedule(recipe.bridge_lr, recipe.bridge_steps)
    curve = []
    with train_only(model, trainable):
        for step in (bar := tqdm(range(recipe.bridge_steps), desc="BLIP-2 bridging (Q-Former)", disable=not progress)):
            set_lr(optimizer, schedule(step))
            scenes, pixels = scene_batch(rng, recipe.batch)
            texts = [training_text(s, rng, recipe.texts) for s in scenes]
            losses = bridge_losses(model, processor, scenes, pixels, texts, recipe)
            optimizer.zero_grad()
            losses["total"].backward()
            optimizer.step()
            curve.append(losses["lm"].item())
            bar.set_postfix(lm_loss=f"{losses['lm'].item():.3f}", align=f"{losses['align'].item():.3f}")
    return curve


def train_blip2(recipe: Blip2Recipe, clip_vision: nn.Module | Callable[[], nn.Module], out: Path | None = None,
                progress: bool = True):
    """Run the three stages, starting the vision encoder from `clip_vision` (a trained CLIP's `vision_model`, or a
    function that returns one: it is called only after the language model's pretraining, which uses no image, so
    a CLIP can still be training meanwhile, as `python -m mmlab.train all` does).

    Each stage draws its own random streams (`stage_rng`), so the order in which the stages run changes no
    weight. Saves to `out` when given. Returns the model, processor and loss curves.
    """
    if recipe.num_query_tokens != PREFIX_LENGTH:
        raise ValueError(f"The recipe trains one query per prefix word: num_query_tokens must be "
                         f"{PREFIX_LENGTH}, got {recipe.num_query_tokens}.")
    seed_everything(recipe.seed)
    model, processor = build_blip2(recipe, recipe_tokenizer(recipe))
    model.train()
    language = pretrain_language_model(model.language_model, processor.tokenizer, recipe,
                                       model.config.image_token_index, progress)
    copy_clip_vision(model.vision_model, clip_vision if isinstance(clip_vision, nn.Module) else clip_vision())
    rng = stage_rng(recipe.seed, "vision")
    strengthen_positions(model.vision_model, scene_batch(rng, 16)[1], recipe.position_scale)
    adaptation = WarmUp(recipe.vision_steps, recipe.batch, recipe.vision_lr, seed_filters=False,
                        weight_decay=recipe.weight_decay)
    curves = {
        "vision": warm_up_vision(model.vision_model, adaptation, rng, "BLIP-2 vision adaptation", progress),
        "language": language,
    }
    curves["bridge"] = bridge(model, processor, recipe, progress)
    model.eval()
    if out is not None:
        save_checkpoint(model, processor, out)
    return model, processor, curves
