#!/usr/bin/env bash
# Used on the lent H100 (2026-11-23) from the repo root with .gl/ (Vulkan loader debs) and
# .devdata/ (release oddity binary, data) carried; see the session note of issue 6/7/10.
# Device-side runner: every job gets T seconds of training (killed by timeout; checkpoints are
# atomic), then an evaluation pass from its last checkpoint. Usage: gpu_runs.sh T JOBFILE
set -u
for f in .gl/*.deb; do dpkg -x $f / ; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
B=$PWD/.devdata/bin/oddity; chmod +x $B; export B
$B info | head -1
T=$1; export T
run() {
  name=$1; shift
  mkdir -p runs/$name
  timeout $T "$B" "$@" --no-progress > runs/$name/train.log 2>&1; rc=$?
  if [ ! -f runs/$name/metrics.json ] || [ $rc -ne 0 ]; then
    case "$1" in
      train) a=(); skip=0; for x in "$@"; do if [ $skip = 1 ]; then skip=0; continue; fi; if [ "$x" = --epochs ]; then skip=1; continue; fi; a+=("$x"); done
             "$B" "${a[@]}" --resume --epochs 1 --no-progress > runs/$name/eval.log 2>&1 ;;
      mlsad) "$B" mlsad eval runs/$name --no-progress > runs/$name/eval.log 2>&1 ;;
    esac
  fi
  echo "$name train_rc=$rc eval_rc=$? $(tail -c 300 runs/$name/train.log | tail -1)"
}
export -f run
mkdir -p .devdata/kol; [ -f .devdata/kolektorsdd-mvtec.tar.gz ] && tar xzf .devdata/kolektorsdd-mvtec.tar.gz -C .devdata/kol; [ -f .devdata/cifsub.tgz ] && tar xzf .devdata/cifsub.tgz -C .devdata
start=$(date +%s)
cat ${@:2} | grep -v '^#' | xargs -P 40 -L 1 bash -c 'run "$@"' _
echo "wall $(( $(date +%s) - start )) s"
python3 - <<'PY' | tee $OUT/summary.txt
import json,glob
for f in sorted(glob.glob('runs/*/metrics.json')):
    m=json.load(open(f))
    keep={k:v for k,v in m.items() if not isinstance(v,(dict,list)) or k in ('per_level_auroc','levels')}
    print(f.split('/')[1], json.dumps(keep)[:600])
PY
tar czf $OUT/runs.tgz runs/*/metrics.json runs/*/*.log runs/*/*.png 2>/dev/null; ls -la $OUT
