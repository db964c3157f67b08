"""How fast can a CPU embed images with the chapter's CLIP architecture (ViT-B/32)?

    python benchmarks/embed_throughput.py [--images 96] [--batch-size 32] [--threads N]

Compares, on a randomly initialized `CLIPConfig()` (the ViT-B/32 architecture: same compute as
`openai/clip-vit-base-patch32`, no download):
  (a) the chapter's loop: processor + get_image_features, one image at a time, float32 (under no_grad);
  (b) `mmlab.embed.embed_images` at batch 32 (bfloat16 autocast where the CPU has fast bfloat16);
  (c) open_clip ViT-B-32 (random weights, pretrained=None), its own preprocessing, batch 32, float32;
  (d) `embed_images` at batch 32 forced to float32, to separate batching from bfloat16.
Prints images/s, the ratios, and the cosine similarity of (b)'s embeddings to the float32 ones.
Targets on the course's CPU: (b) >= 5x (a), (b) >= 2x (c), cosine >= 0.99.
"""

from __future__ import annotations

import argparse
import os
import random
import time

import torch
import torch.nn.functional as F
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

from mmlab.data.scenes import render_scene, sample_scene
from mmlab.embed import cpu_has_fast_bf16, embed_images


def photos(n: int) -> list:
    """Scene images at 320x240, so resizing and cropping cost what they cost on a small photo."""
    rng = random.Random(0)
    return [render_scene(sample_scene(rng)).resize((320, 240)) for _ in range(n)]


def timed(fn, images, warmup):
    fn(warmup)  # first calls allocate and pick kernels
    start = time.perf_counter()
    out = fn(images)
    return out, len(images) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    images, warmup = photos(args.images), photos(4)
    model, processor = CLIPModel(CLIPConfig()).eval(), CLIPImageProcessor()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, fast bfloat16: {cpu_has_fast_bf16()}, "
          f"load average {os.getloadavg()[0]:.2f} at start; {args.images} images of 320x240")

    def chapter_loop(batch):
        rows = []
        for image in batch:
            pixel_values = processor(images=image, return_tensors="pt")["pixel_values"]
            with torch.no_grad():
                rows.append(model.get_image_features(pixel_values=pixel_values).pooler_output)
        return F.normalize(torch.cat(rows), dim=-1)

    def mmlab_auto(batch):
        return embed_images(model, processor, batch, batch_size=args.batch_size, progress=False)

    def mmlab_fp32(batch):
        return embed_images(model, processor, batch, batch_size=args.batch_size, progress=False, dtype=torch.float32)

    import open_clip

    oc_model, _, oc_preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    oc_model.eval()

    def open_clip_batched(batch):
        rows = []
        with torch.inference_mode():
            for start in range(0, len(batch), args.batch_size):
                pixels = torch.stack([oc_preprocess(im) for im in batch[start : start + args.batch_size]])
                rows.append(oc_model.encode_image(pixels, normalize=True))
        return torch.cat(rows)

    reference, loop_rate = timed(chapter_loop, images, warmup)
    ours, ours_rate = timed(mmlab_auto, images, warmup)
    _, oc_rate = timed(open_clip_batched, images, warmup)
    ours_fp32, fp32_rate = timed(mmlab_fp32, images, warmup)
    cosine = F.cosine_similarity(ours, reference)

    print(f"(a) chapter loop, 1 at a time, fp32        {loop_rate:7.1f} images/s")
    print(f"(b) mmlab.embed_images, batch {args.batch_size}, auto    {ours_rate:7.1f} images/s  "
          f"{ours_rate / loop_rate:.1f}x (a)  {ours_rate / oc_rate:.1f}x (c)")
    print(f"(c) open_clip ViT-B-32, batch {args.batch_size}, fp32    {oc_rate:7.1f} images/s")
    print(f"(d) mmlab.embed_images, batch {args.batch_size}, fp32    {fp32_rate:7.1f} images/s  "
          f"{fp32_rate / loop_rate:.1f}x (a)")
    print(f"cosine similarity of (b) to fp32 (a): min {cosine.min():.5f}, mean {cosine.mean():.5f}; "
          f"(d) vs (a): min {F.cosine_similarity(ours_fp32, reference).min():.5f}")
    print(f"load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
