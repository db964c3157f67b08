"""The recipes that make the embedded default checkpoints (`python -m mmlab.train all`).

- `clip_recipe.py`: the CLIP recipe (vision warm-up, then contrastive training).
- `blip2_recipe.py`: the BLIP-2 recipe (vision adaptation, text-only language-model pretraining, the Q-Former bridge).
- `warmup.py`: stage 1 of both, the supervised warm-up of a vision tower on the scene world's labels.
- `texts.py`: what the BLIP-2 language model reads: captions, questions, chats, and the tokenizer trained on them.
- `stage.py`: what every stage sets up (its own seeded random stream, the learning-rate schedule).
- `checkpoint.py`: writing a trained model as a Hugging Face folder small enough to ship.

What the lessons and the metrics share with the recipes lives one level up (`mmlab.prefix`, `mmlab.data.pixels`,
`mmlab.blip2`), so that only the training entry point, its tests and lessons 06 and 07 import this package.
"""
