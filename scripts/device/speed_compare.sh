#!/usr/bin/env bash
# Issue 10 on a lent GPU machine in one call: the ratio table oddity (Vulkan) / PyTorch (CUDA) on
# the same GPU, then per-kernel profiles of the convolution-heavy workloads. Run from the repo
# root with `.gl/` (the Vulkan loader debs, see the device README) and `.devdata/bin/oddity`
# (a release build made here: `cargo build --release --bin oddity`) carried; results land in $OUT.
#   bash scripts/device/speed_compare.sh [STEPS]
set -u
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
B=$PWD/.devdata/bin/oddity; chmod +x "$B"
STEPS=${1:-20}
"$B" info | tee "$OUT/adapter.txt"
python3 benches/torch/compare.py --oddity "$B" --device cuda --steps "$STEPS" --warmup 3 --out "$OUT" 2>&1 | tee "$OUT/compare.txt"
# The same oddity run against torch without TF32 tensor cores (oddity multiplies in full f32).
mkdir -p "$OUT/no-tf32"
python3 benches/torch/compare.py --oddity-json "$OUT/oddity.json" --device cuda --no-tf32 --steps "$STEPS" --warmup 3 \
  --out "$OUT/no-tf32" 2>&1 | tee "$OUT/compare-no-tf32.txt"
for w in fmnist_lenet_svdd/1024 cifar10_lenet_svdd/128 bergmann_ae_ssim/32 mlsad_detector8/64; do
  echo "== $w" >> "$OUT/profile.txt"
  "$B" bench --workload "$w" --profile --steps 5 >> "$OUT/profile.txt" 2>&1
  # The same step with the GPU conv as before 8 x 8 tiles and per-phase transposed maps.
  echo "== $w ODDITY_CONV_TILED=plain" >> "$OUT/profile.txt"
  ODDITY_CONV_TILED=plain "$B" bench --workload "$w" --profile --steps 5 >> "$OUT/profile.txt" 2>&1
done
tail -n 60 "$OUT/profile.txt"
