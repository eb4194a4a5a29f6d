"""The PyTorch examples DCGAN, re-implemented as a benchmark anchor: its two networks and its
training step at 64 px, on any device torch offers.

Follows github.com/pytorch/examples, dcgan/main.py (read at commit 77f55b9, 2025-08-25), with
its defaults: nz 100, ngf = ndf = 64, three colour channels, 64 px. As there:

- netG: ConvTranspose2d nz -> 512 (kernel 4, stride 1, pad 0), then 512 -> 256 -> 128 -> 64
  (kernel 4, stride 2, pad 1), each followed by BatchNorm2d and ReLU, then 64 -> 3 (kernel 4,
  stride 2, pad 1) and Tanh; no biases;
- netD: Conv2d 3 -> 64 (kernel 4, stride 2, pad 1) and LeakyReLU 0.2, then 64 -> 128 -> 256 ->
  512 (kernel 4, stride 2, pad 1) each with BatchNorm2d and LeakyReLU 0.2, then 512 -> 1 (kernel
  4, stride 1, pad 0) and Sigmoid; no biases;
- ``weights_init``: conv weights N(0, 0.02), batch-norm weights N(1, 0.02) and biases 0;
- ``BCELoss``; Adam, learning rate 2e-4, betas (0.5, 0.999), for both; ``cudnn.benchmark``;
- the step: D on the real batch with label 1 and ``backward``; fresh noise, ``fake = netG``, D on
  ``fake.detach()`` with label 0 and ``backward``; ``optimizerD.step()``; then G: D on ``fake``
  (the same fakes) with label 1, ``backward``, ``optimizerG.step()``.

Where this differs, and why:

- the data: the example reads image files through a ``DataLoader`` (decode, resize, crop,
  ``ToTensor``, ``Normalize(0.5, 0.5)``, two workers). Here uint8 images held in memory are cut
  into shuffled full batches, moved to the device and scaled to [-1, 1] there (the same
  values ``Normalize`` gives), inside the timed loop, as our own step's pipeline is;
- the per-step ``.item()`` reads (D(x), D(G(z)) twice, the losses) and the ``print`` are left
  out: each waits for the device. The step returns the losses as tensors; whoever times it
  reads them when it chooses (once at the end of a timed run). This can only make the anchor
  faster;
- ``bf16`` (off by default) runs both networks under ``torch.autocast(dtype=torch.bfloat16)``
  and computes ``BCELoss`` in float32 outside it (PyTorch refuses ``binary_cross_entropy``
  under autocast); ``channels_last`` (off by default) puts the networks and the batches in
  that memory format. The example has neither; they are the usual way to run it fast on a
  GPU, and the GPU comparison uses them;
- ``nn.parallel.data_parallel`` over several GPUs is left out (one device);
- torch is imported when a model is built, never at import time (torch is not a dependency).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.anchors.feed import check_images
from bench.anchors.flops import conv_flops, deconv_flops

NZ, NGF, NDF, NC = 100, 64, 64, 3
LR, BETA1 = 2e-4, 0.5


def torch_available() -> bool:
    """Whether torch can be imported here."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def networks() -> tuple[Any, Any]:
    """(netG, netD) as in the example, initialised by its ``weights_init``."""
    import torch
    from torch import nn

    net_g = nn.Sequential(
        nn.ConvTranspose2d(NZ, NGF * 8, 4, 1, 0, bias=False),
        nn.BatchNorm2d(NGF * 8), nn.ReLU(True),
        nn.ConvTranspose2d(NGF * 8, NGF * 4, 4, 2, 1, bias=False),
        nn.BatchNorm2d(NGF * 4), nn.ReLU(True),
        nn.ConvTranspose2d(NGF * 4, NGF * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(NGF * 2), nn.ReLU(True),
        nn.ConvTranspose2d(NGF * 2, NGF, 4, 2, 1, bias=False),
        nn.BatchNorm2d(NGF), nn.ReLU(True),
        nn.ConvTranspose2d(NGF, NC, 4, 2, 1, bias=False),
        nn.Tanh(),
    )
    net_d = nn.Sequential(
        nn.Conv2d(NC, NDF, 4, 2, 1, bias=False),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(NDF, NDF * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(NDF * 2), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(NDF * 2, NDF * 4, 4, 2, 1, bias=False),
        nn.BatchNorm2d(NDF * 4), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(NDF * 4, NDF * 8, 4, 2, 1, bias=False),
        nn.BatchNorm2d(NDF * 8), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(NDF * 8, 1, 4, 1, 0, bias=False),
        nn.Sigmoid(),
    )

    def weights_init(m: Any) -> None:
        name = m.__class__.__name__
        if name.find("Conv") != -1:
            torch.nn.init.normal_(m.weight, 0.0, 0.02)
        elif name.find("BatchNorm") != -1:
            torch.nn.init.normal_(m.weight, 1.0, 0.02)
            torch.nn.init.zeros_(m.bias)

    net_g.apply(weights_init)
    net_d.apply(weights_init)
    return net_g, net_d


@dataclass
class TorchAnchor:
    """The example's networks, optimisers and loss on one device; ``step(batch)`` trains on
    one uint8 batch (B x 64 x 64 x 3) and returns (errD, errG) as detached tensors."""

    torch: Any
    device: Any
    net_g: Any
    net_d: Any
    opt_g: Any
    opt_d: Any
    criterion: Any
    bf16: bool
    channels_last: bool

    def _autocast(self) -> Any:
        if not self.bf16:
            return contextlib.nullcontext()
        return self.torch.autocast(self.device.type, dtype=self.torch.bfloat16)

    def prepare(self, batch: Any) -> Any:
        """uint8 NHWC on the host -> float32 NCHW in [-1, 1] on the device."""
        t = self.torch
        x = t.as_tensor(batch).to(self.device, non_blocking=True).permute(0, 3, 1, 2)
        x = x.float().div_(127.5).sub_(1.0)
        fmt = t.channels_last if self.channels_last else t.contiguous_format
        return x.contiguous(memory_format=fmt)

    def step(self, batch: Any) -> tuple[Any, Any]:
        t = self.torch
        real = self.prepare(batch)
        b = real.shape[0]
        # (1) update D: maximise log(D(x)) + log(1 - D(G(z)))
        self.net_d.zero_grad()
        label = t.full((b,), 1.0, device=self.device)
        with self._autocast():
            output = self.net_d(real).view(-1)
        err_d_real = self.criterion(output.float(), label)
        err_d_real.backward()
        noise = t.randn(b, NZ, 1, 1, device=self.device)
        with self._autocast():
            fake = self.net_g(noise)
            output = self.net_d(fake.detach()).view(-1)
        label.fill_(0.0)
        err_d_fake = self.criterion(output.float(), label)
        err_d_fake.backward()
        self.opt_d.step()
        # (2) update G: maximise log(D(G(z)))
        self.net_g.zero_grad()
        label.fill_(1.0)
        with self._autocast():
            output = self.net_d(fake).view(-1)
        err_g = self.criterion(output.float(), label)
        err_g.backward()
        self.opt_g.step()
        return (err_d_real + err_d_fake).detach(), err_g.detach()


def build(device: str | None = None, bf16: bool = False, channels_last: bool = False,
          seed: int = 0) -> TorchAnchor:
    """The example on ``device`` (default: CUDA when there is one, else the CPU)."""
    import torch

    torch.manual_seed(seed)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    net_g, net_d = networks()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net_g = net_g.to(dev, memory_format=fmt)
    net_d = net_d.to(dev, memory_format=fmt)
    opt_d = torch.optim.Adam(net_d.parameters(), lr=LR, betas=(BETA1, 0.999))
    opt_g = torch.optim.Adam(net_g.parameters(), lr=LR, betas=(BETA1, 0.999))
    return TorchAnchor(torch, dev, net_g, net_d, opt_g, opt_d, torch.nn.BCELoss(), bf16,
                       channels_last)


def batches(images: np.ndarray, batch_size: int, seed: int = 0) -> Iterator[np.ndarray]:
    """Endless shuffled full batches of ``images`` (N x 64 x 64 x 3 uint8), a new order each
    epoch (the example's ``DataLoader(shuffle=True)``, without its decoding)."""
    check_images(images, batch_size)
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(len(images))
        for i in range(0, len(order) - batch_size + 1, batch_size):
            yield images[np.sort(order[i:i + batch_size])]


def step_flops() -> dict[str, float]:
    """FLOPs per real image of one example step, from the layer shapes (no torch needed;
    docs/training.md): the D update on the reals and on ``fake.detach()``, each D forward, D
    weight gradients and D input gradients but the first layer's, 2 x (3D - d1); G forward
    once; the G update: D forward on the same fakes, and ``errG.backward()`` computes D's
    weight gradients too (netD's parameters require them; ``netD.zero_grad()`` drops them
    next step) besides D's input gradients, then G's weight and input gradients (not the
    noise's): 3D + 2G - g1. Total 9D + 3G - 2 d1 - g1."""
    g = [deconv_flops(1, NZ, NGF * 8, 4), deconv_flops(4, NGF * 8, NGF * 4, 4),
         deconv_flops(8, NGF * 4, NGF * 2, 4), deconv_flops(16, NGF * 2, NGF, 4),
         deconv_flops(32, NGF, NC, 4)]
    d = [conv_flops(32, NDF, NC, 4), conv_flops(16, NDF * 2, NDF, 4),
         conv_flops(8, NDF * 4, NDF * 2, 4), conv_flops(4, NDF * 8, NDF * 4, 4),
         conv_flops(1, 1, NDF * 8, 4)]
    big_g, big_d = sum(g), sum(d)
    step = 2 * (3 * big_d - d[0]) + big_g + 3 * big_d + 2 * big_g - g[0]
    return {"g_forward": big_g, "d_forward": big_d, "step": step}
