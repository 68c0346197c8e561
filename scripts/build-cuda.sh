#!/usr/bin/env bash
# build-cuda.sh [PREFIX] -> target/release/valex with candle's CUDA kernels (sm_90, CUDA 13.0).
#
# Builds on a machine WITHOUT a GPU (the binary needs libcuda.so.1 from an NVIDIA driver only
# to run). Assembles the CUDA 13.0 toolkit from PyPI wheels under PREFIX (default
# /tmp/cuda13; ~1.2 GB, ~45 s) with a link-time libcuda stub, then builds valex with the `cuda`
# feature (~10 min on 2 cores the first time; candle-kernels stays cached in target/).
# Recipe and pins: ../shared/DEPS.md §4 and ../shared/GPU.md (newer toolkits emit PTX that
# driver 580 rejects, so nvvm/crt are pinned to 13.0). Not run in CI.
#
# Output: target/release/valex (checked: PTX .version <= 9.0). Run on the GPU machine with
#   LD_LIBRARY_PATH=/usr/local/cuda/lib64 ./valex ... --device cuda
set -euo pipefail
cd "$(dirname "$0")/.."
P=${1:-/tmp/cuda13}
if [ ! -f "$P/cuda-env.sh" ]; then
  python3 -m venv "$P/venv"
  "$P/venv/bin/pip" install -q "cuda-toolkit[nvcc,cudart,cublas,curand,cccl]==13.0.2" \
      "nvidia-cuda-nvrtc==13.0.*" "nvidia-nvvm==13.0.*" "nvidia-cuda-crt==13.0.*"
  C=$("$P/venv/bin/python" -c 'import nvidia,os;print(os.path.join(list(nvidia.__path__)[0],"cu13"))')
  ( cd "$C/lib"
    for l in cudart cublas cublasLt nvrtc; do ln -sf "lib$l.so.13" "lib$l.so"; done
    ln -sf libcurand.so.10 libcurand.so
    mkdir -p stubs
    grep -ohE '\bcu[A-Z][A-Za-z0-9_]*\b' "$C/include/cuda.h" | sort -u | sed 's/.*/void &(void) {}/' > stubs/cuda_stub.c
    gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o stubs/libcuda.so stubs/cuda_stub.c )
  cat > "$P/cuda-env.sh" <<EOT
export CUDA_ROOT=$C
export CUDA_HOME=$C
export CUDA_PATH=$C
export PATH=$C/bin:\$PATH
export CUDA_COMPUTE_CAP=90
EOT
fi
# shellcheck disable=SC1091
source "$P/cuda-env.sh"
cargo build --release -p valex-cli --features cuda
BIN=${CARGO_TARGET_DIR:-target}/release/valex
V=$(strings "$BIN" | grep -m1 '^\.version' | awk '{print $2}')
echo "built $BIN (PTX .version ${V:-?})"
case "$V" in 9.0|8.*|"") ;; *) echo "PTX .version $V is newer than driver 580 accepts (9.0)" >&2; exit 1;; esac
