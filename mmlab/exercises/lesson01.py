"""Lesson 01, how a Vision Transformer reads an image: self-checks and worked solutions."""

from __future__ import annotations

import torch

from mmlab.exercises import Exercise, Verdict, solved, solved_function, verdict
from mmlab.vit import VisionTransformer, ViTConfig, conv_to_linear_weight, patchify

# BLIP-2's image encoder (EVA ViT-g, lesson 03) reads 224-pixel images in 14-pixel patches; the chapter's CLIP,
# openai/clip-vit-base-patch32, projects 32-pixel RGB patches to width 768 with a bias-free Conv2d.
VITG_IMAGE_SIZE, VITG_PATCH_SIZE = 224, 14
B32_PATCH_SIZE, B32_WIDTH = 32, 768


def check_vitg_tokens(answer: int) -> Verdict:
    """Exercise 1: how many tokens does a ViT read for a 224-pixel image cut into 14-pixel patches?"""
    grid = VITG_IMAGE_SIZE // VITG_PATCH_SIZE
    wrong = {
        grid**2: "That counts the patches only: what else goes into the sequence?",
        (VITG_IMAGE_SIZE // 32) ** 2 + 1: "That is the count for this lesson's 32-pixel patches, not 14-pixel ones.",
        (VITG_IMAGE_SIZE // 16) ** 2 + 1: "That is the count for 16-pixel patches, not 14-pixel ones.",
        VITG_IMAGE_SIZE**2: "That is one token per pixel: a ViT reads patches, not pixels.",
    }.get(answer, "How many patches fit along one side, how many in the grid, and what comes in front of them?")
    return verdict(answer == grid**2 + 1, f"(224 / 14)^2 = {grid**2} patches, plus the class token: five times the "
                   "50 tokens of a 32-pixel-patch CLIP, and attention's cost grows with the square of it.", wrong)


def check_vitg_patch_length(answer: int) -> Verdict:
    """Exercise 2: how many numbers does one flattened 14 x 14 RGB patch hold?"""
    p = VITG_PATCH_SIZE
    wrong = {
        p * p: "That is one colour channel.",
        16 * 16 * 3: "That is a 16 x 16 RGB patch (ViT-B/16); these patches are 14 pixels on a side.",
        32 * 32 * 3: "That is a 32 x 32 RGB patch (this lesson's CLIP); these patches are 14 pixels on a side.",
    }.get(answer, "Count the values of one patch: rows, columns and colour channels.")
    return verdict(answer == p * p * 3, f"14 x 14 pixels x 3 channels = {p * p * 3} values per patch.", wrong)


def check_b32_projection_parameters(answer: int) -> Verdict:
    """Exercise 4: the parameters of openai/clip-vit-base-patch32's patch projection (32x32 RGB to 768, no bias)."""
    weights = B32_PATCH_SIZE * B32_PATCH_SIZE * 3 * B32_WIDTH
    wrong = {
        weights + B32_WIDTH: "Close: look again at the Conv2d printed in section 4. Does it have a bias?",
        16 * 16 * 3 * 768 + 768: "That is ViT-B/16's projection (the table in section 4); these patches are 32 pixels.",
        16 * 16 * 3 * 768: "That is a 16-pixel patch; these are 32 pixels on a side.",
    }.get(answer, "A linear layer from n inputs to m outputs has n*m weights, plus m biases if it has a bias.")
    return verdict(answer == weights, f"3,072 inputs x 768 outputs = {weights:,} weights, and no bias "
                   "(bias=False): the same for any image size, since every patch shares them.", wrong)


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
            "in what order does the kernel store its axes?"
            if same_values_other_order else "Start from weight.permute(...) and end with .reshape(D, -1).")
    return verdict(ok, "patchify(images) @ W.T equals the strided convolution: the same map, two views.", hint)


def class_token_outputs(positions: bool, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A small random ViT's class-token output for one image's patch tokens, in order and shuffled."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = VisionTransformer(ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_layers=2, num_heads=4,
                                            intermediate_size=64)).eval()
        image = torch.rand(1, 3, 32, 32)
        order = torch.randperm(16)  # a shuffle of the 4 x 4 patches
    outputs = []
    with torch.no_grad():
        tokens = model.patch_embedding(image)  # (1, 16, D)
        for sequence in (tokens, tokens[:, order]):
            x = torch.cat([model.class_embedding.expand(1, 1, -1), sequence], dim=1)  # (1, 17, D)
            x = model.pre_layrnorm(x + model.position_embedding if positions else x)
            for layer in model.layers:
                x, _ = layer(x)
            outputs.append(x[0, 0])  # the class token
    return outputs[0], outputs[1]


def check_shuffle(answer) -> Verdict:
    """Exercise 5: does shuffling the patches change the class token's output, (without, with) position embeddings?"""
    words = {"same", "changes"}
    try:
        without, with_ = (str(a).strip().lower() for a in answer)
    except (TypeError, ValueError):
        return verdict(False, "", 'Answer with a pair, such as ("same", "same"): first without, then with positions.')
    if without not in words or with_ not in words:
        return verdict(False, "", 'Each answer is "same" or "changes".')
    want = tuple("same" if torch.allclose(*class_token_outputs(positions), atol=1e-5) else "changes"
                 for positions in (False, True))
    if (without, with_) == want:
        return verdict(True, f"{want}, measured on a small random ViT: attention weighs every token against every "
                       "other and sums, which does not depend on their order, so without positions a shuffled image "
                       "gives the same class token (the patch outputs are shuffled alike). The position embeddings "
                       "are what make the order, and so the layout, matter.", "")
    if without != want[0]:
        hint = ("Without positions, what in one attention layer depends on where a token stands in the sequence? "
                "Follow the class token through: a weighted sum over all tokens.")
    else:
        hint = "With positions, each patch token is added a vector that depends on its place: is that still order-free?"
    return verdict(False, "", hint)


def conv_to_linear(weight: torch.Tensor) -> torch.Tensor:
    """(D, C, P, P) -> (D, P*P*C), flattened like `patchify`: row, column, channel."""
    return weight.permute(0, 2, 3, 1).reshape(weight.shape[0], -1)


EXERCISES = {
    1: Exercise(solved("tokens = (224 // 14) ** 2 + 1  # 16 x 16 patches, plus the class token"),
                "lesson01.check_vitg_tokens(tokens)", "One token per patch, plus the class token in front:"),
    2: Exercise(solved("length = 14 * 14 * 3  # rows x columns x colour channels"),
                "lesson01.check_vitg_patch_length(length)", "A patch is 14 x 14 pixels with 3 colour values each:"),
    3: Exercise(solved_function(conv_to_linear), "lesson01.check_conv_to_linear(conv_to_linear)", points=2),
    4: Exercise(solved("parameters = 32 * 32 * 3 * 768  # weights only: the Conv2d has bias=False"),
                "lesson01.check_b32_projection_parameters(parameters)",
                "in_features * out_features weights; CLIP's patch embedding has no bias:"),
    5: Exercise(solved('answer = ("same", "changes")  # (without, with) position embeddings'),
                "lesson01.check_shuffle(answer)",
                "Attention is a weighted sum over all tokens, whatever their order; only positions tell places apart:"),
}


def solution(n: int) -> None:
    """Print the worked solution of exercise `n`."""
    print(EXERCISES[n].worked())
