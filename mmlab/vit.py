"""A small Vision Transformer written out step by step, checked against Hugging Face's CLIP vision tower.

The path of an image through a ViT:

    image (B, C, H, W) --patchify--> patches (B, N, P*P*C) --linear--> tokens (B, N, D)
    --prepend class token, add positions--> (B, 1+N, D) --encoder layers--> (B, 1+N, D)

The layer names follow `transformers`' CLIP (`q_proj`, `fc1`, `layer_norm1`, ...) so that a CLIP
vision tower's weights load into `VisionTransformer` unchanged (see `VisionTransformer.from_clip`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# --- patches -------------------------------------------------------------------------------------


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cut images into non-overlapping square patches, read row by row, each flattened.

    images: (B, C, H, W) with H and W multiples of `patch_size`.
    Returns (B, N, P*P*C) with N = (H/P) * (W/P); inside a patch the values run row, column,
    channel (the flattening of a (P, P, C) block).
    """
    if images.ndim != 4:
        raise ValueError(f"patchify expects a batch (B, C, H, W); got shape {tuple(images.shape)}. "
                         "Add a batch dimension with images.unsqueeze(0).")
    b, c, h, w = images.shape
    p = patch_size
    if h % p or w % p:
        raise ValueError(f"Image size {h}x{w} is not a multiple of the patch size {p}: "
                         "resize or crop the image first (CLIP's processor crops to 224x224).")
    x = images.reshape(b, c, h // p, p, w // p, p)  # (B, C, gh, P, gw, P)
    x = x.permute(0, 2, 4, 3, 5, 1)  # (B, gh, gw, P, P, C)
    return x.reshape(b, (h // p) * (w // p), p * p * c)  # (B, N, P*P*C)


def unpatchify(patches: torch.Tensor, patch_size: int, image_size: tuple[int, int]) -> torch.Tensor:
    """The inverse of `patchify`: (B, N, P*P*C) patches back to (B, C, H, W) images."""
    b, n, dim = patches.shape
    h, w = image_size
    p = patch_size
    c = dim // (p * p)
    if c * p * p != dim or n != (h // p) * (w // p) or h % p or w % p:
        raise ValueError(f"{n} patches of {dim} values do not tile a {h}x{w} image with patch size {p}.")
    x = patches.reshape(b, h // p, w // p, p, p, c)  # (B, gh, gw, P, P, C)
    x = x.permute(0, 5, 1, 3, 2, 4)  # (B, C, gh, P, gw, P)
    return x.reshape(b, c, h, w)


class PatchEmbedding(nn.Module):
    """A linear projection of flattened patches: the same map as a strided convolution, written plainly."""

    def __init__(self, patch_size: int, num_channels: int, hidden_size: int, bias: bool = True):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Linear(patch_size * patch_size * num_channels, hidden_size, bias=bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(patchify(images, self.patch_size))  # (B, N, D)


def conv_to_linear_weight(conv_weight: torch.Tensor) -> torch.Tensor:
    """A patch convolution's kernel (D, C, P, P) as the matrix (D, P*P*C) that acts on `patchify`'s patches."""
    d = conv_weight.shape[0]
    return conv_weight.permute(0, 2, 3, 1).reshape(d, -1)  # (D, P, P, C) -> (D, P*P*C)


@torch.no_grad()
def load_conv_patch_embedding(patch_embedding: PatchEmbedding, conv: nn.Conv2d) -> PatchEmbedding:
    """Copy a strided-conv patch embedding (HF `CLIPVisionEmbeddings.patch_embedding`,
    `ViTPatchEmbeddings.projection`) into a `PatchEmbedding`. A missing conv bias becomes zero."""
    if conv.kernel_size != conv.stride or conv.kernel_size[0] != conv.kernel_size[1]:
        raise ValueError(f"Not a patch embedding: kernel {conv.kernel_size} with stride {conv.stride}.")
    linear = patch_embedding.proj
    weight = conv_to_linear_weight(conv.weight)
    if weight.shape != linear.weight.shape:
        raise ValueError(f"Shape mismatch: conv gives {tuple(weight.shape)}, linear has {tuple(linear.weight.shape)}.")
    linear.weight.copy_(weight)
    if linear.bias is not None:
        linear.bias.copy_(conv.bias if conv.bias is not None else torch.zeros_like(linear.bias))
    return patch_embedding


# --- the transformer -----------------------------------------------------------------------------


@dataclass
class ViTConfig:
    image_size: int = 224  # pixels per side (square images)
    patch_size: int = 32  # pixels per patch side: 224/32 = 7x7 = 49 patches
    num_channels: int = 3  # RGB
    hidden_size: int = 768  # D, the width of every token
    num_layers: int = 12  # encoder layers
    num_heads: int = 12  # attention heads per layer; head size D / heads
    intermediate_size: int = 3072  # MLP width, 4 * D
    hidden_act: str = "quick_gelu"  # CLIP's activation; "gelu" for the original ViT
    layer_norm_eps: float = 1e-5
    patch_bias: bool = False  # CLIP's patch projection has no bias; ViT's has one
    pre_layernorm: bool = True  # CLIP normalizes the tokens once before the encoder
    num_classes: int = 0  # > 0 adds a linear classifier on the class token

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size  # patches per side

    @property
    def num_patches(self) -> int:
        return self.grid**2


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(1.702 * x)


ACTIVATIONS = {"quick_gelu": quick_gelu, "gelu": F.gelu}


class Attention(nn.Module):
    """Multi-head self-attention that also returns its attention weights."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        d = config.hidden_size
        self.num_heads = config.num_heads
        self.head_dim = d // config.num_heads
        self.q_proj, self.k_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.v_proj, self.out_proj = nn.Linear(d, d), nn.Linear(d, d)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)  # (B, T, D) -> (B, h, T, hs)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, d = x.shape
        q, k, v = self.split_heads(self.q_proj(x)), self.split_heads(self.k_proj(x)), self.split_heads(self.v_proj(x))
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)  # (B, h, T, T)
        weights = scores.softmax(dim=-1)  # each row: how much one token reads from every token
        out = (weights @ v).transpose(1, 2).reshape(b, t, d)  # (B, T, D)
        return self.out_proj(out), weights


class MLP(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        self.act = ACTIVATIONS[config.hidden_act]
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class EncoderLayer(nn.Module):
    """A pre-LN transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.self_attn = Attention(config)
        self.layer_norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        attended, weights = self.self_attn(self.layer_norm1(x))
        x = x + attended  # (B, T, D)
        x = x + self.mlp(self.layer_norm2(x))
        return x, weights


@dataclass
class ViTOutput:
    last_hidden_state: torch.Tensor  # (B, 1+N, D), the class token first
    pooler_output: torch.Tensor  # (B, D), the normalized class token
    hidden_states: tuple[torch.Tensor, ...]  # num_layers + 1 tensors (B, 1+N, D): the input, then each layer's output
    attentions: tuple[torch.Tensor, ...]  # num_layers tensors (B, heads, 1+N, 1+N)
    logits: torch.Tensor | None = None  # (B, num_classes) when the config has a classifier


class VisionTransformer(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        self.config = config
        d = config.hidden_size
        self.patch_embedding = PatchEmbedding(config.patch_size, config.num_channels, d, bias=config.patch_bias)
        self.class_embedding = nn.Parameter(torch.randn(d) * 0.02)  # (D,), one learned token for the whole image
        self.position_embedding = nn.Parameter(torch.randn(config.num_patches + 1, d) * 0.02)  # (1+N, D)
        # "layrnorm" is Hugging Face's spelling in CLIPVisionTransformer: keep it, or from_clip's state dicts stop mapping.
        self.pre_layrnorm = nn.LayerNorm(d, eps=config.layer_norm_eps) if config.pre_layernorm else nn.Identity()
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_layers))
        self.post_layernorm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.classifier = nn.Linear(d, config.num_classes) if config.num_classes else None

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Patches -> tokens, with the class token in front and positions added. (B, C, H, W) -> (B, 1+N, D)."""
        tokens = self.patch_embedding(images)  # (B, N, D)
        cls = self.class_embedding.expand(tokens.shape[0], 1, -1)  # (B, 1, D)
        return torch.cat([cls, tokens], dim=1) + self.position_embedding  # (B, 1+N, D)

    def forward(self, images: torch.Tensor) -> ViTOutput:
        x = self.pre_layrnorm(self.embed(images))
        hidden_states, attentions = [x], []
        for layer in self.layers:
            x, weights = layer(x)
            hidden_states.append(x)
            attentions.append(weights)
        pooled = self.post_layernorm(x[:, 0])  # (B, D)
        logits = self.classifier(pooled) if self.classifier is not None else None
        return ViTOutput(x, pooled, tuple(hidden_states), tuple(attentions), logits)

    @classmethod
    @torch.no_grad()
    def from_clip(cls, vision_model: nn.Module) -> VisionTransformer:
        """A copy of the vision tower of a Hugging Face `CLIPModel` or `CLIPVisionModel`, same weights."""
        vision_model = getattr(vision_model, "vision_model", vision_model)  # a CLIPModel's tower
        hf = vision_model.config
        config = ViTConfig(
            image_size=hf.image_size, patch_size=hf.patch_size, num_channels=hf.num_channels,
            hidden_size=hf.hidden_size, num_layers=hf.num_hidden_layers, num_heads=hf.num_attention_heads,
            intermediate_size=hf.intermediate_size, hidden_act=hf.hidden_act, layer_norm_eps=hf.layer_norm_eps,
        )
        emb = vision_model.embeddings
        weight = emb.patch_embedding.weight  # a bare tower has no `.device` before transformers 5.2
        model = cls(config).to(device=weight.device, dtype=weight.dtype)
        load_conv_patch_embedding(model.patch_embedding, emb.patch_embedding)
        model.class_embedding.copy_(emb.class_embedding)
        model.position_embedding.copy_(emb.position_embedding.weight)
        model.pre_layrnorm.load_state_dict(vision_model.pre_layrnorm.state_dict())
        for mine, theirs in zip(model.layers, vision_model.encoder.layers, strict=True):
            mine.load_state_dict(theirs.state_dict())  # same names: q_proj, fc1, layer_norm1, ...
        model.post_layernorm.load_state_dict(vision_model.post_layernorm.state_dict())
        return model.eval()


# --- attention maps ------------------------------------------------------------------------------


def cls_attention(attentions: torch.Tensor) -> torch.Tensor:
    """How much the class token reads from each patch, per head, as a grid.

    attentions: one layer's weights (B, heads, 1+N, 1+N). Returns (B, heads, g, g); the weight the
    class token puts on itself is dropped, so a head's map sums to 1 minus that weight.
    """
    to_patches = attentions[:, :, 0, 1:]  # (B, heads, N)
    g = math.isqrt(to_patches.shape[-1])
    return to_patches.reshape(*to_patches.shape[:2], g, g)


def attention_rollout(attentions: tuple[torch.Tensor, ...] | list[torch.Tensor]) -> torch.Tensor:
    """Attention rollout (Abnar and Zuidema, 2020): how much each token draws on each input token
    through all layers, following attention and the residual path.

    Per layer: average the heads, add the identity for the residual connection, renormalize rows;
    then multiply the layers. Returns (B, 1+N, 1+N) with rows summing to 1.
    """
    rollout = None
    for weights in attentions:  # (B, heads, T, T), first layer first
        a = weights.float().mean(dim=1)  # (B, T, T)
        a = a + torch.eye(a.shape[-1], device=a.device)
        a = a / a.sum(dim=-1, keepdim=True)
        rollout = a if rollout is None else a @ rollout
    if rollout is None:
        raise ValueError("attention_rollout needs the attentions of at least one layer.")
    return rollout


def rollout_map(attentions: tuple[torch.Tensor, ...] | list[torch.Tensor]) -> torch.Tensor:
    """The rollout from the class token to the patches, as a grid (B, g, g) that sums to at most 1."""
    to_patches = attention_rollout(attentions)[:, 0, 1:]  # (B, N)
    g = math.isqrt(to_patches.shape[-1])
    return to_patches.reshape(-1, g, g)
