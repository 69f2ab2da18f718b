#!/usr/bin/env python3
"""One ratio table, oddity's step time over PyTorch's, per workload (issue 10).

Runs `oddity bench --json` and `benches/torch/steps.py --json` with the same workloads, warm-up
and step counts, then prints, naming both devices:

    workload  batch  oddity ms  torch ms  oddity/torch

A ratio below 1 means oddity's step is faster. The geometric mean summarises the table.

    python3 benches/torch/compare.py [--oddity target/release/oddity] [--device cuda|cpu]
        [--workload all] [--steps 20] [--warmup 3] [--note TEXT] [--out DIR] [--no-tf32]
    python3 benches/torch/compare.py --oddity-json a.json --torch-json b.json   # combine saved runs

The oddity binary needs no Rust toolchain where it runs (build it with
`cargo build --release --bin oddity` and copy it); ODDITY_BACKEND / ODDITY_ADAPTER pick its adapter.
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def find_oddity(given):
    if given:
        return given
    for c in (os.path.join(ROOT, "target", "release", "oddity"), shutil.which("oddity")):
        if c and os.path.exists(c):
            return c
    sys.exit("no oddity binary: pass --oddity PATH (cargo build --release --bin oddity)")


def run(cmd):
    print("+ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd)
    if proc.returncode != 0:
        sys.exit(f"{cmd[0]} exited with {proc.returncode}")


def load(path):
    with open(path) as f:
        return json.load(f)


def ratio_table(oddity, torch):
    """Rows (workload, batch, oddity ms, torch ms, ratio, oddity host ms, oddity dispatches per step) for the
    workloads both ran."""
    theirs = {(r["workload"], r["batch"]): r for r in torch["results"]}
    rows = []
    for r in oddity["results"]:
        t = theirs.get((r["workload"], r["batch"]))
        if t is None:
            continue
        # host_median_ms: oddity's recording + submit per step (absent from older reports).
        host = r.get("host_median_ms")
        # dispatches_per_step: kernel launches one oddity step records (absent from older reports).
        rows.append((r["workload"], r["batch"], r["median_ms"], t["median_ms"], r["median_ms"] / t["median_ms"], host,
                     r.get("dispatches_per_step")))
    return rows


def precision(torch):
    """How torch multiplied on CUDA: TF32 tensor cores in convolutions (PyTorch's default on Ampere
    and newer) or full f32 as oddity; empty for CPU runs and older reports."""
    s = torch.get("settings", {})
    if "cuda" not in torch.get("device", "").lower() or "cudnn_allow_tf32" not in s:
        return ""
    return ", TF32 convolutions" if s["cudnn_allow_tf32"] else ", full f32 (--no-tf32)"


def print_table(oddity, torch, rows, note):
    print()
    kernels = f" ({oddity['kernels']} kernels)" if "kernels" in oddity else ""
    print(f"oddity device: {oddity['device']}{kernels}")
    print(f"torch device:  {torch['device']}{precision(torch)}")
    print(f"warm-up {oddity['warmup']}/{torch['warmup']} steps, median of {oddity['steps']}/{torch['steps']} steps (oddity/torch)")
    for n in (note, oddity.get("note"), torch.get("note")):
        if n:
            print(f"note: {n}")
            break
    print(f"{'workload':<22} {'batch':>6} {'oddity ms':>12} {'torch ms':>12} {'oddity/torch':>13} {'oddity host ms':>15} {'dispatches':>11}")
    for w, b, o, t, q, h, d in rows:
        host = f"{h:>15.3f}" if h is not None else f"{'-':>15}"
        dispatches = f"{d:>11}" if d is not None else f"{'-':>11}"
        print(f"{w:<22} {b:>6} {o:>12.3f} {t:>12.3f} {q:>12.2f}x {host} {dispatches}")
    if rows:
        geo = math.exp(sum(math.log(row[4]) for row in rows) / len(rows))
        print(f"{'geometric mean':<22} {'':>6} {'':>12} {'':>12} {geo:>12.2f}x")
    missing = {(r["workload"], r["batch"]) for r in oddity["results"]} ^ {(r["workload"], r["batch"]) for r in torch["results"]}
    if missing:
        print("only in one run: " + ", ".join(f"{w}/{b}" for w, b in sorted(missing)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--oddity", help="path of the oddity binary (default target/release/oddity, then PATH)")
    ap.add_argument("--device", help="torch device, cuda | cpu (default: cuda if torch sees one)")
    ap.add_argument("--workload", default="all")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--note", help="printed with the table and stored in both JSON files")
    ap.add_argument("--out", help="directory for oddity.json, torch.json and ratios.json (default: a temporary one)")
    ap.add_argument("--oddity-json", help="use this saved `oddity bench --json` instead of running oddity")
    ap.add_argument("--torch-json", help="use this saved `steps.py --json` instead of running torch")
    ap.add_argument("--no-tf32", action="store_true", help="torch in full f32 (no TF32 tensor cores), as oddity computes")
    args = ap.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="oddity-compare-")
    os.makedirs(out, exist_ok=True)
    common = ["--workload", args.workload, "--steps", str(args.steps), "--warmup", str(args.warmup)]
    if args.note:
        common += ["--note", args.note]

    oddity_json = args.oddity_json
    if not oddity_json:
        oddity_json = os.path.join(out, "oddity.json")
        run([find_oddity(args.oddity), "bench", *common, "--json", oddity_json])
    torch_json = args.torch_json
    if not torch_json:
        torch_json = os.path.join(out, "torch.json")
        device = ["--device", args.device] if args.device else []
        tf32 = ["--no-tf32"] if args.no_tf32 else []
        run([sys.executable, os.path.join(HERE, "steps.py"), *device, *tf32, *common, "--json", torch_json])

    oddity, torch = load(oddity_json), load(torch_json)
    rows = ratio_table(oddity, torch)
    print_table(oddity, torch, rows, args.note)
    with open(os.path.join(out, "ratios.json"), "w") as f:
        json.dump({
            "oddity_device": oddity["device"], "torch_device": torch["device"] + precision(torch), "note": args.note,
            "rows": [{"workload": w, "batch": b, "oddity_ms": o, "torch_ms": t, "ratio": q, "oddity_host_ms": h,
                      "oddity_dispatches": d} for w, b, o, t, q, h, d in rows],
        }, f, indent=2)
    print(f"results in {out}")


if __name__ == "__main__":
    main()
