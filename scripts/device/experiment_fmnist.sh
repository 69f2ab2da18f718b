#!/usr/bin/env bash
# Used on the lent H100 (2026-11-23) from the repo root with .gl/ (Vulkan loader debs) and
# .devdata/ (release oddity binary, data) carried; see the session note of issue 6/7/10.
set -u
for f in .gl/*.deb; do dpkg -x $f / ; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
B=$PWD/.devdata/bin/oddity; chmod +x $B; export B
$B info | head -1
tar xzf .devdata/cifsub.tgz -C .devdata
E=$1; T=$2; export E T
one() {
  timeout $T $B experiment --dataset fmnist --data-root .devdata/fmnist --losses svdd,hsc,logistic,ssim \
    --methods full,platt-oe,platt-spectral,beta-oe,beta-spectral,head-oe,head-spectral --seeds 1 --classes $1 \
    --epochs $E --oe-dir .devdata/cifar10/train --out runs/exp-$1 > runs-$1.log 2>&1
  echo "$1 rc=$? $(grep -c '"method"' runs/exp-$1/results.json 2>/dev/null) cells"
}
export -f one; mkdir -p runs
start=$(date +%s)
printf '%s\n' t-shirt_top trouser pullover dress coat sandal shirt sneaker bag ankle_boot | xargs -P 10 -I{} bash -c 'one {}'
echo "wall $(( $(date +%s) - start )) s"
tail -n 5 runs-trouser.log
tar czf $OUT/exp.tgz runs/exp-*/results.json runs/exp-*/results.md runs-*.log
