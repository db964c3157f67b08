"""The recipes that make the embedded default checkpoints (`python -m mmlab.train all`), and lesson 01's tiny ViT.

- `clip.py`: the CLIP recipe (vision warm-up, then contrastive training).
- `blip2.py`: the BLIP-2 recipe (vision adaptation, text-only language-model pretraining, the Q-Former bridge).
- `warmup.py`: stage 1 of both, the supervised warm-up of a vision tower on the scene world's labels.
- `texts.py`: what the BLIP-2 language model reads: the scene prefix, captions, questions, chats.
- `common.py`: what every stage shares (its own seeded random stream, pixels, the learning-rate schedule).
- `checkpoint.py`: writing a trained model as a Hugging Face folder small enough to ship.
- `tiny_vit.py`: training `mmlab.vit.VisionTransformer` from scratch in seconds (lesson 01).

The lesson helpers that *use* the trained models live one level up (`mmlab.blip2`, `mmlab.embed`, `mmlab.vit`).
"""
