"""Lesson 01, how a Vision Transformer reads an image: self-checks and worked solutions."""

from __future__ import annotations

import torch

from mmlab.exercises import Exercise, Verdict, solved, solved_function, verdict
from mmlab.vit import conv_to_linear_weight, patchify


def check_num_tokens(answer: int, model) -> Verdict:
    """Exercise 1: how many tokens (vectors) does the CLIP vision encoder read for one image?"""
    vision = model.config.vision_config
    patches = (vision.image_size // vision.patch_size) ** 2
    wrong = {
        patches: f"{patches} counts the patches only: the class token comes first.",
        (vision.image_size // 16) ** 2 + 1: "That is the count for 16-pixel patches; read this model's patch_size.",
        vision.image_size**2: "That is one token per pixel: a ViT reads patches, not pixels.",
    }.get(answer, "Divide image_size by patch_size, square it, and add one.")
    return verdict(answer == patches + 1,
                   f"({vision.image_size} / {vision.patch_size})^2 = {patches} patches, plus the class token.", wrong)


def check_patch_length(answer: int, model) -> Verdict:
    """Exercise 2: how many numbers go into the linear projection for one flattened patch of this CLIP?"""
    vision = model.config.vision_config
    p, c = vision.patch_size, vision.num_channels
    wrong = {
        p * p: f"{p * p} is one channel: a patch has {c} colour channels.",
        16 * 16 * 3: "768 is the flattened size of a 16x16 RGB patch (ViT-B/16); read this model's patch_size.",
        vision.hidden_size: f"{vision.hidden_size} is the width D the projection maps to, not its input.",
    }.get(answer, "Multiply patch height, patch width and the number of channels.")
    return verdict(answer == p * p * c, f"{p} x {p} pixels x {c} channels = {p * p * c} values per patch.", wrong)


def check_conv_to_linear(fn) -> Verdict:
    """Exercise 3: a function turning a conv kernel (D, C, P, P) into the (D, P*P*C) matrix for `patchify`."""
    g = torch.Generator().manual_seed(1)
    conv = torch.nn.Conv2d(3, 8, kernel_size=4, stride=4, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g))
    images = torch.randn(2, 3, 8, 12, generator=g)
    expected = conv(images).flatten(2).transpose(1, 2)  # (B, N, D)
    try:
        weight = fn(conv.weight.detach().clone())
    except Exception as error:  # noqa: BLE001 - a learner's function can fail in any way; say how
        return verdict(False, "", f"Your function raised {type(error).__name__}: {error}")
    if tuple(weight.shape) != (8, 48):
        return verdict(False, "", f"Got shape {tuple(weight.shape)}; want (D, P*P*C) = (8, 48).")
    got = patchify(images, 4) @ weight.T
    ok = torch.allclose(got, expected, atol=1e-5)
    reference = conv_to_linear_weight(conv.weight)
    same_values_other_order = torch.allclose(weight.sort(dim=1).values, reference.sort(dim=1).values)
    hint = ("The numbers are right but in the wrong order: patchify flattens each patch as (row, column, channel), "
            "so move the channel axis last with permute(0, 2, 3, 1) before reshape."
            if same_values_other_order else "Start from weight.permute(...) and end with .reshape(D, -1).")
    return verdict(ok, "patchify(images) @ W.T equals the strided convolution: the same map, two views.", hint)


def check_projection_parameters(answer: int) -> Verdict:
    """Exercise 4: the parameters of ViT-B/16's patch projection (16x16 RGB patches to D = 768, with bias)."""
    weights, bias = 16 * 16 * 3 * 768, 768
    wrong = {
        weights: f"{weights:,} counts the weight matrix only: add the bias, one per output.",
        16 * 16 * 3: "768 is the input size of the layer; it maps 768 inputs to 768 outputs.",
    }.get(answer, "A linear layer from n inputs to m outputs has n*m weights and m biases.")
    return verdict(answer == weights + bias, f"768 x 768 weights + 768 biases = {weights + bias:,}: "
                   "the same for any image size, since every patch shares them.", wrong)


def conv_to_linear(weight: torch.Tensor) -> torch.Tensor:
    """(D, C, P, P) -> (D, P*P*C), flattened like `patchify`: row, column, channel."""
    return weight.permute(0, 2, 3, 1).reshape(weight.shape[0], -1)


EXERCISES = {
    1: Exercise(solved("""
        vision = clip.config.vision_config
        tokens = (vision.image_size // vision.patch_size) ** 2 + 1"""),
        "lesson01.check_num_tokens(tokens, clip)", "One token per patch, plus the class token in front:"),
    2: Exercise(solved("""
        vision = clip.config.vision_config
        length = vision.patch_size * vision.patch_size * vision.num_channels"""),
        "lesson01.check_patch_length(length, clip)", "A patch is patch_size x patch_size pixels with 3 colour values each:"),
    3: Exercise(solved_function(conv_to_linear), "lesson01.check_conv_to_linear(conv_to_linear)", points=2),
    4: Exercise(solved("""
        embed = vit.PatchEmbedding(patch_size=16, num_channels=3, hidden_size=768, bias=True)
        parameters = sum(p.numel() for p in embed.parameters())  # 768 * 768 + 768 = 590,592"""),
        "lesson01.check_projection_parameters(parameters)", "in_features * out_features weights, plus out_features biases:"),
}


def solution(n: int) -> None:
    """Print the worked solution of exercise `n`."""
    print(EXERCISES[n].worked())
