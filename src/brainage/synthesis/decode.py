"""Turn a synthesis plan into volumes: mix the parents' latents, decode in batches.

Any decoder works (``generator.decode`` of ``tgbgan_generator``, or a stand-in in tests):
a callable from latents ``(B, *latent)`` to images ``(B, C, D, H, W)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from brainage.errors import InputError
from brainage.synthesis.plan import SynthesisPlan, SyntheticChild

Decoder = Callable[[Tensor], Tensor]
Device = str | torch.device | None


def stack_latents(ids: Sequence[str], latents: Mapping[str, Tensor]) -> Tensor:
    """Latents of ``ids`` stacked ``(N, *latent)``.

    Raises:
        BrainAgeError: some ids have no latent (all of them are named).
    """
    missing = sorted({s for s in ids if s not in latents})
    if missing:
        raise InputError(
            f"no latent for {len(missing)} subject(s): {', '.join(missing[:10])}. Fix: encode "
            "every subject the plan names (the plan was made from another subject list?)."
        )
    return torch.stack([latents[s] for s in ids])


def mix_latents(children: SynthesisPlan | Iterable[SyntheticChild],
                latents: Mapping[str, Tensor]) -> Tensor:
    """``w * z_p + (1 - w) * z_q`` for every child, stacked ``(K, *latent)``."""
    kids = list(children.children if isinstance(children, SynthesisPlan) else children)
    if not kids:
        raise InputError("the plan has no children to mix. Fix: raise cap, or check the "
                            "bins (each needs at least 2 subjects below cap).")
    z_p = stack_latents([c.parents[0] for c in kids], latents)
    z_q = stack_latents([c.parents[1] for c in kids], latents)
    w = torch.tensor([c.weight for c in kids], dtype=z_p.dtype).view(-1, *([1] * (z_p.ndim - 1)))
    return w * z_p + (1.0 - w) * z_q  # (K, *latent)


def encode_subjects(encode: Decoder, images: Iterable[tuple[str, Tensor]],
                    device: Device = None) -> dict[str, Tensor]:
    """Latent of every ``(id, image (C, D, H, W))``, on the CPU, without gradients."""
    out: dict[str, Tensor] = {}
    with torch.inference_mode():
        for sid, image in images:
            out[sid] = encode(image[None].to(device))[0].cpu()  # (1, C, D, H, W) -> latent
    return out


def decode_batches(decode: Decoder, z: Tensor, batch_size: int = 4, device: Device = None
                   ) -> Iterator[Tensor]:
    """Decoded images ``(b, C, D, H, W)`` on the CPU, ``batch_size`` latents at a time."""
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size!r}.")
    with torch.inference_mode():
        for start in range(0, z.shape[0], batch_size):
            yield decode(z[start:start + batch_size].to(device)).float().cpu()


def as_volume(image: Tensor) -> np.ndarray:
    """``(C, D, H, W)`` -> float32 ``(D, H, W)`` for one channel, else ``(C, D, H, W)``."""
    return (image[0] if image.shape[0] == 1 else image).numpy().astype(np.float32)


def decode_children(decode: Decoder, children: SynthesisPlan | Iterable[SyntheticChild],
                    latents: Mapping[str, Tensor], batch_size: int = 4, device: Device = None
                    ) -> Iterator[tuple[SyntheticChild, np.ndarray]]:
    """Each child with its decoded volume (float32 ``(D, H, W)``), in plan order.

    Args:
        decode: Latents -> images, e.g. ``generator.decode``.
        children: A plan (or its children).
        latents: Latent of every parent, by subject id (see :func:`encode_subjects`).
        batch_size: Latents decoded at once.
        device: Where the decoder runs (None: leave the latents where they are).
    """
    kids = list(children.children if isinstance(children, SynthesisPlan) else children)
    done = 0
    for batch in decode_batches(decode, mix_latents(kids, latents), batch_size, device):
        for image in batch:
            yield kids[done], as_volume(image)
            done += 1
