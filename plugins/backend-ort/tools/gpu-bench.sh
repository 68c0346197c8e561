#!/usr/bin/env bash
# gpu-bench.sh: backend/ort on a lent GPU machine (../shared/GPU.md), in one call. UNVERIFIED:
# prepared without a GPU; docs/backend-ort.md#gpu and docs/performance.md give the carry steps.
#
# Expects, from earlier calls on the same warm machine, in /tmp/o:
#   prov.part00..03            xz'd libonnxruntime_providers_cuda.so, split in 4 (onnxruntime-gpu 1.31.1)
#   libonnxruntime.so.1.31.1, libonnxruntime_providers_shared.so   (from the same wheel)
#   valex, ort_bench           built here with --features ort-cuda / --features cuda (release)
#   demo/                      the demo model folder with planted-demo.onnx as model.onnx
#   torch_baseline.py          a copy of ../shared/bench/torch_baseline.py
# Writes under $OUT: correctness (GPU vs CPU on the demo study) and one speed table (ort_bench
# and torch_baseline.py on the same card, Qwen2.5-0.5B shape, f16, batch 16 x 512).
set -uo pipefail
cd "$(dirname "$0")/../../.."
OUT=${OUT:-ort-gpu-out}; O=/tmp/o; mkdir -p "$OUT"
log() { echo "== $*" | tee -a "$OUT/log.txt"; }
[ -f $O/libonnxruntime_providers_cuda.so ] || cat $O/prov.part0* | xz -d > $O/libonnxruntime_providers_cuda.so
CUDNN=$(python3 -c 'import nvidia.cudnn, os; print(os.path.join(list(nvidia.cudnn.__path__)[0], "lib"))' 2>/dev/null)
export LD_LIBRARY_PATH=$O:/usr/local/cuda/lib64:${CUDNN}:${LD_LIBRARY_PATH:-}
export ORT_DYLIB_PATH=$O/libonnxruntime.so.1.31.1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee -a "$OUT/log.txt"

log "1. correctness: the demo study on cuda:0 vs cpu (neuron sets, evaluation, statistics)"
for dev in cpu cuda:0; do
  $O/valex run experiments/value-study/demo.toml --out "$OUT/demo-${dev%%:*}" -q \
    --set model.backend=backend/ort --set model.params.path=$O/demo --set model.params.device=$dev \
    2>&1 | tail -3 | tee -a "$OUT/log.txt"
done
python3 - "$OUT" <<'PY' | tee -a "$OUT/log.txt"
import json, sys
from safetensors.numpy import load_file
o = sys.argv[1]
j = lambda d, f: json.load(open(f"{o}/demo-{d}/{f}"))
print("neuron sets equal:", j("cpu", "neurons.json")["neurons"] == j("cuda", "neurons.json")["neurons"])
print("evaluation equal:", j("cpu", "results.json")["evaluation"] == j("cuda", "results.json")["evaluation"])
a, b = load_file(f"{o}/demo-cpu/statistics.safetensors"), load_file(f"{o}/demo-cuda/statistics.safetensors")
for k in sorted(a):
    d = abs(a[k] - b[k]).max() / max(abs(a[k]).max(), 1e-12)
    print(f"  {k}: max relative difference {d:.2e}")
PY

log "2. speed: ort_bench and torch_baseline.py, same card, same call"
python3 plugins/backend-ort/tools/export_bench_model.py qwen2_0_5b f16 /tmp/q05 2>&1 | tail -1
$O/ort_bench /tmp/q05 --device cuda:0 --batch 16 --seq 512 --iters 10 2>&1 | tee "$OUT/ort_bench.txt"
python3 $O/torch_baseline.py --device cuda --models qwen2_0_5b --batch 16 --seq 512 --iters 10 \
  --json "$OUT/torch.json" 2>&1 | tail -6 | tee "$OUT/torch.txt"
log "done"
