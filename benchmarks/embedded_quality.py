"""How good is the embedded default? Held-out figures for the packaged CLIP and BLIP-2.

    python benchmarks/embedded_quality.py [--clip PATH] [--blip2 PATH] [--scenes N]

Targets (issues "The embedded default" and "The embedded BLIP-2 answers questions"): CLIP zero-shot >= 95%
(shape, colour), text->image recall@1 among 100 >= 80%, 3x3 diagonal margin >= 0.14 (the chapter's real CLIP:
0.14); BLIP-2 caption attributes >= 90%, exact 2-/3-object captions >= 80% / 70%; VQA >= 92% and each question
type >= 85%; >= 90% after an earlier turn; >= 85% on question templates never trained on; >= 90% of questions
about absent objects answered as absent; the language model from the true scene prefix >= 98% per type (also
printed for held-out templates and absent objects: the bridge's ceiling there).
"""

from __future__ import annotations

import argparse
import time

import torch
from transformers import Blip2ForConditionalGeneration, Blip2Processor, CLIPModel, CLIPProcessor

from mmlab import evaluate
from mmlab.data.images import OFFLINE_SCENES
from mmlab.models import embedded_path


def timed_load(cls, path):
    start = time.perf_counter()
    obj = cls.from_pretrained(path, dtype=torch.float32) if cls in (CLIPModel, Blip2ForConditionalGeneration) \
        else cls.from_pretrained(path)
    return obj, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", default=str(embedded_path("clip")))
    parser.add_argument("--blip2", default=str(embedded_path("blip2")))
    parser.add_argument("--scenes", type=int, default=300, help="held-out scenes per measurement")
    args = parser.parse_args()
    torch.manual_seed(0)
    n = args.scenes

    CLIPModel.from_pretrained(args.clip)  # warm the import and file caches before timing
    clip, t_model = timed_load(CLIPModel, args.clip)
    proc, t_proc = timed_load(CLIPProcessor, args.clip)
    clip.eval()
    print(f"CLIP  load: {t_model + t_proc:.2f} s (model {t_model:.2f} s, processor {t_proc:.2f} s)")
    one = evaluate.held_out_scenes(n, n_objects=1)
    combos = evaluate.held_out_scenes(n, n_objects=1, split="heldout")
    print(f"CLIP  zero-shot shape:  {evaluate.zero_shot_accuracy(clip, proc, one, 'shape'):.1%}   "
          f"(held-out colour/shape combos: {evaluate.zero_shot_accuracy(clip, proc, combos, 'shape'):.1%})")
    print(f"CLIP  zero-shot colour: {evaluate.zero_shot_accuracy(clip, proc, one, 'color'):.1%}   "
          f"(held-out colour/shape combos: {evaluate.zero_shot_accuracy(clip, proc, combos, 'color'):.1%})")
    recalls = [evaluate.recall_at_1(clip, proc, evaluate.held_out_scenes(100 * (k + 1), unique=True)[100 * k:])
               for k in range(3)]
    print(f"CLIP  text->image recall@1 among 100: {sum(recalls) / 3:.1%} (3 galleries: "
          + ", ".join(f"{r:.0%}" for r in recalls) + ")")
    lesson = list(OFFLINE_SCENES.values())
    margins = [evaluate.similarity_margin(clip, proc, evaluate.held_out_scenes(3 * (k + 1))[3 * k:]) for k in range(50)]
    print(f"CLIP  3x3 margin: lesson images {evaluate.similarity_margin(clip, proc, lesson):.2f}; "
          f"50 random held-out triples: mean {sum(margins) / 50:.2f}, min {min(margins):.2f}")

    Blip2ForConditionalGeneration.from_pretrained(args.blip2)
    blip, t_model = timed_load(Blip2ForConditionalGeneration, args.blip2)
    bproc, t_proc = timed_load(Blip2Processor, args.blip2)
    blip.eval()
    print(f"BLIP-2 load: {t_model + t_proc:.2f} s (model {t_model:.2f} s, processor {t_proc:.2f} s)")
    start = time.perf_counter()
    report = evaluate.caption_report(blip, bproc, evaluate.held_out_scenes(n))
    print(f"BLIP-2 captions: attributes {report.attribute_accuracy:.1%}, whole caption exact {report.exact:.1%} "
          "(by object count: " + ", ".join(f"{k}: {v:.0%}" for k, v in report.exact_by_count.items())
          + f") [{time.perf_counter() - start:.1f} s for {n}]")
    for truth, said in report.examples:
        print(f"    truth: {truth!r:60} said: {said!r}")
    combos = evaluate.caption_report(blip, bproc, evaluate.held_out_scenes(n, split="heldout"))
    print(f"BLIP-2 captions on held-out colour/shape combos: attributes {combos.attribute_accuracy:.1%}")
    scenes = evaluate.held_out_scenes(n)
    measures = {
        "VQA (canonical questions)": {},
        "VQA after one earlier turn": {"with_history": True},
        "VQA, training templates as learners type them": {"templates": "train", "typed": True},
        "VQA, held-out templates (never trained on), typed": {"templates": "heldout", "typed": True},
    }
    for label, options in measures.items():
        print(f"BLIP-2 {label}: {_figures(evaluate.vqa_accuracy(blip, bproc, scenes, **options))}")
    print(f"BLIP-2 VQA (canonical questions) in capitals: {_figures(evaluate.capitals_accuracy(blip, bproc, scenes))}")
    print(f"BLIP-2 absent objects answered as absent: training templates "
          f"{evaluate.absent_accuracy(blip, bproc, scenes):.1%}, held-out templates "
          f"{evaluate.absent_accuracy(blip, bproc, scenes, templates='heldout'):.1%}")
    print(f"BLIP-2 follow-up about \"it\" after a first question: {evaluate.follow_up_accuracy(blip, bproc, scenes):.1%}")
    ceilings = {
        "": evaluate.vqa_questions(scenes),
        ", held-out templates, typed": evaluate.vqa_questions(scenes, templates="heldout", typed=True),
        ", absent objects, training templates": evaluate.absent_questions(scenes),
        ", absent objects, held-out templates": evaluate.absent_questions(scenes, templates="heldout"),
        ", follow-ups about \"it\" after the true first turn": evaluate.follow_up_questions(scenes),
    }
    for label, asked in ceilings.items():
        print(f"OPT alone from the true 13-word prefix{label}: {_figures(evaluate.prefix_accuracy(blip, bproc, asked))}")
    print(f"Bridge, nearest prefix word to each query: {_figures(evaluate.bridge_reading(blip, bproc, scenes))}")


def _figures(report: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1%}" for k, v in report.items())

if __name__ == "__main__":
    main()
