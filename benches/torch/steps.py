#!/usr/bin/env python3
"""PyTorch side of the speed comparison (issue 10): the workloads of `oddity bench`
(src/workloads.rs) built in PyTorch with the same architectures, losses and Adam settings,
timed the same way: warm-up steps, then the median of N steps, each synchronised
(`torch.cuda.synchronize()` on CUDA) before its clock stops.

    python3 benches/torch/steps.py --device cuda [--workload all] [--steps 20] [--warmup 3] [--json out.json]

Prints one table (workload, batch, median ms/step, images/s) naming the torch device.
PyTorch runs with its defaults (eager mode, cudnn.benchmark on, TF32 convolutions allowed on
Ampere and newer, as PyTorch ships); `--no-tf32` forces full f32 like oddity; the JSON records
the settings.
"""

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# name, batch, in table order; identical to oddity::workloads::all().
WORKLOADS = [
    ("fmnist_lenet_svdd", 128),
    ("fmnist_lenet_svdd", 1024),
    ("cifar10_lenet_svdd", 128),
    ("bergmann_ae_ssim", 32),
    ("mlsad_detector8", 8),
    ("mlsad_detector8", 64),
    ("ssim_map11", 32),
]


def select(spec):
    """`all`, a name (every batch) or `name/batch`, comma separated (as `oddity bench --workload`)."""
    chosen = []
    for part in [p.strip() for p in spec.split(",") if p.strip()]:
        matched = [w for w in WORKLOADS if part in ("all", w[0], f"{w[0]}/{w[1]}")]
        if not matched:
            names = ", ".join(f"{n}/{b}" for n, b in WORKLOADS)
            sys.exit(f"no workload matches {part!r}; use all, a name or name/batch from: {names}")
        chosen += [w for w in matched if w not in chosen]
    return chosen


# ---- LeNets of Deep SVDD (src/models/lenet.rs): bias-free, BN without affine (eps 1e-4), leaky ReLU 0.01.

def conv_block(cin, cout):
    return [
        nn.Conv2d(cin, cout, 5, padding=2, bias=False),
        nn.BatchNorm2d(cout, eps=1e-4, affine=False),
        nn.LeakyReLU(0.01),
        nn.MaxPool2d(2),
    ]


def fmnist_lenet():
    return nn.Sequential(*conv_block(1, 8), *conv_block(8, 4), nn.Flatten(), nn.Linear(4 * 7 * 7, 32, bias=False))


def cifar10_lenet():
    return nn.Sequential(
        *conv_block(3, 32), *conv_block(32, 64), *conv_block(64, 128), nn.Flatten(), nn.Linear(128 * 4 * 4, 128, bias=False)
    )


# ---- Bergmann et al. SSIM autoencoder, 256x256 (src/models/autoencoder.rs, BergmannConfig::encoder_layers).

def bergmann_layers(cin=1, widths=(32, 64, 128), latent=100, size=256):
    w0, w1, w2 = widths
    return [  # (cin, cout, kernel, stride, padding)
        (cin, w0, 4, 2, 1), (w0, w0, 4, 2, 1), (w0, w0, 4, 2, 1), (w0, w0, 3, 1, 1), (w0, w1, 4, 2, 1),
        (w1, w1, 3, 1, 1), (w1, w2, 4, 2, 1), (w2, w1, 3, 1, 1), (w1, w0, 3, 1, 1), (w0, latent, size // 32, 1, 0),
    ]


def bergmann_autoencoder():
    layers = bergmann_layers()
    enc = []
    for i, (ci, co, k, s, p) in enumerate(layers):
        enc.append(nn.Conv2d(ci, co, k, s, p))
        if i != len(layers) - 1:
            enc.append(nn.LeakyReLU(0.2))
    dec = []
    for j, (ci, co, k, s, p) in enumerate(reversed(layers)):
        last = j == len(layers) - 1
        dec.append(nn.ConvTranspose2d(co, ci, k, s, p))
        if not last:
            dec.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*enc, *dec)


# ---- SSIM map (kernels/src/ssim.rs): 11x11 Gaussian window, sigma 1.5, constant padding by 5,
# c1 = 0.01^2, c2 = 0.03^2, biased window moments; separable like oddity's kernels.

def gaussian_taps(device, window=11, sigma=1.5):
    c = window // 2
    g = torch.tensor([math.exp(-((i - c) ** 2) / (2 * sigma * sigma)) for i in range(window)], dtype=torch.float64)
    return (g / g.sum()).to(torch.float32).to(device)


def ssim_map(x, y, pad_value, taps):
    n, c, h, w = x.shape
    xp = F.pad(x, (5, 5, 5, 5), value=pad_value)
    yp = F.pad(y, (5, 5, 5, 5), value=pad_value)
    moments = torch.cat([xp, yp, xp * xp, yp * yp, xp * yp], dim=1)  # [n, 5c, h+10, w+10]
    k = 5 * c
    blurred = F.conv2d(moments, taps.view(1, 1, 1, -1).expand(k, 1, 1, 11), groups=k)
    blurred = F.conv2d(blurred, taps.view(1, 1, -1, 1).expand(k, 1, 11, 1), groups=k)
    mx, my, xx, yy, xy = blurred.split(c, dim=1)
    c1, c2 = 0.01**2, 0.03**2
    vx, vy, cxy = xx - mx * mx, yy - my * my, xy - mx * my
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


# ---- MLSAD level-8 detector stand-in (oddity::workloads::mlsad_detector8; see its doc comment).

class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(512, 256, 1), nn.LeakyReLU(0.2), nn.Dropout(0.1), nn.Conv2d(256, 512, 1))
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x):
        return self.act(self.body(x) + x)


def mlsad_detector8():
    return nn.Sequential(
        nn.Conv2d(5, 64, 4), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 3), nn.LeakyReLU(0.2),
        nn.Conv2d(128, 256, 3), nn.LeakyReLU(0.2),
        nn.Conv2d(256, 512, 1), nn.LeakyReLU(0.2),
        Residual(), Residual(),
        nn.Conv2d(512, 1, 1),
    )


def coordinate_maps(batch, size, device):
    r = torch.linspace(-1.0, 1.0, size, device=device)
    cols = r.view(1, 1, 1, size).expand(batch, 1, size, size)
    rows = r.view(1, 1, size, 1).expand(batch, 1, size, size)
    return torch.cat([cols, rows], dim=1).contiguous()


def prepare(name, b, device):
    """Returns a closure running one full training step (not synchronised)."""
    randn = lambda *shape: torch.randn(*shape, device=device)
    if name in ("fmnist_lenet_svdd", "cifar10_lenet_svdd"):
        fm = name.startswith("fmnist")
        net = (fmnist_lenet() if fm else cifar10_lenet()).to(device).train()
        x = randn(b, 1, 28, 28) if fm else randn(b, 3, 32, 32)
        c = torch.full((32 if fm else 128,), 0.1, device=device)
        opt = torch.optim.Adam(net.parameters(), lr=1e-4, weight_decay=0.5e-6)

        def step():
            opt.zero_grad()
            ((net(x) - c) ** 2).sum(dim=1).mean().backward()
            opt.step()

        return step
    if name == "bergmann_ae_ssim":
        ae = bergmann_autoencoder().to(device).train()
        x = randn(b, 1, 256, 256)
        taps = gaussian_taps(device)
        opt = torch.optim.Adam(ae.parameters(), lr=2e-4, weight_decay=1e-5)

        def step():
            opt.zero_grad()
            (1.0 - ssim_map(ae(x), x, 0.0, taps).mean()).backward()
            opt.step()

        return step
    if name == "mlsad_detector8":
        det = mlsad_detector8().to(device).train()
        images = randn(b, 3, 32, 32)
        coords = coordinate_maps(b, 32, device)
        labels = (torch.arange(b, device=device) % 2).float().view(b, 1, 1, 1).expand(b, 1, 25, 25).contiguous()
        opt = torch.optim.Adam(det.parameters(), lr=1e-3, weight_decay=1e-4)
        noise_std = math.sqrt(0.05)

        def step():
            opt.zero_grad()
            noisy = images + noise_std * torch.randn_like(images)
            z = det(torch.cat([noisy, coords], dim=1))
            F.binary_cross_entropy_with_logits(z, labels).backward()
            opt.step()

        return step
    if name == "ssim_map11":
        x = randn(b, 1, 256, 256).requires_grad_()
        y = randn(b, 1, 256, 256).requires_grad_()
        taps = gaussian_taps(device)

        def step():
            x.grad = None
            y.grad = None
            ssim_map(x, y, 0.0, taps).mean().backward()

        return step
    raise ValueError(name)


def device_name(device):
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda}, torch {torch.__version__})"
    model = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"CPU {model} ({torch.get_num_threads()} torch threads, torch {torch.__version__})"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cuda | cpu (default: cuda if available)")
    ap.add_argument("--workload", default="all")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write results here")
    ap.add_argument("--no-tf32", action="store_true", help="disable TF32 in cuDNN and matmul (full f32 like oddity)")
    ap.add_argument("--note", help="free text stored in the JSON and printed")
    args = ap.parse_args()
    if args.steps < 1:
        sys.exit("--steps must be at least 1")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: torch sees no CUDA device")
    torch.manual_seed(args.seed)
    torch.backends.cudnn.benchmark = True
    if args.no_tf32:
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    name = device_name(device)
    print(f"torch steps on device: {name}")
    print(f"warm-up {args.warmup} steps, median of {args.steps} steps, seed {args.seed}")
    if args.note:
        print(f"note: {args.note}")
    print(f"{'workload':<22} {'batch':>6} {'median ms/step':>16} {'images/s':>12}")
    rows = []
    for wname, b in select(args.workload):
        step = prepare(wname, b, device)
        for _ in range(args.warmup):
            step()
            sync()
        samples = []
        for _ in range(args.steps):
            t = time.perf_counter()
            step()
            sync()
            samples.append((time.perf_counter() - t) * 1e3)
        med = statistics.median(samples)
        print(f"{wname:<22} {b:>6} {med:>16.3f} {b / (med / 1e3):>12.1f}", flush=True)
        rows.append({
            "workload": wname, "batch": b, "median_ms": med, "min_ms": min(samples), "max_ms": max(samples),
            "images_per_s": b / (med / 1e3), "samples_ms": samples,
        })
        del step
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if args.json:
        report = {
            "framework": "torch", "device": name, "host_threads": os.cpu_count(), "warmup": args.warmup,
            "steps": args.steps, "seed": args.seed, "note": args.note,
            "settings": {
                "cudnn_benchmark": True,
                "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
                "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
                "torch_threads": torch.get_num_threads(),
            },
            "results": rows,
        }
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
