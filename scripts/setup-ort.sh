#!/usr/bin/env bash
# Installs the ONNX Runtime shared library that backend/ort loads at run time (valex builds
# ort with load-dynamic: nothing is linked or downloaded at build time).
#
#   scripts/setup-ort.sh DIR          CPU:  onnxruntime==1.31.1      -> DIR/lib/libonnxruntime.so.1.31.1
#   scripts/setup-ort.sh DIR --gpu    CUDA: onnxruntime-gpu==1.31.1  -> plus libonnxruntime_providers_{shared,cuda}.so
#
# It prints the library's path; use it as ORT_DYLIB_PATH:
#   export ORT_DYLIB_PATH=$(scripts/setup-ort.sh .ort)
# The wheel comes from PyPI through pip (python3 -m pip download); nothing is installed into
# Python. A second call finds the library and downloads nothing.
set -euo pipefail
DIR=${1:?usage: scripts/setup-ort.sh DIR [--gpu]}
VERSION=${ORT_VERSION:-1.31.1}
PACKAGE=onnxruntime
if [ "${2:-}" = "--gpu" ]; then PACKAGE=onnxruntime-gpu; fi
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
LIB="$DIR/lib/libonnxruntime.so.$VERSION"
MARK="$DIR/lib/.$PACKAGE-$VERSION"
if [ -f "$LIB" ] && [ -f "$MARK" ]; then echo "$LIB"; exit 0; fi
mkdir -p "$DIR/wheels" "$DIR/lib"
python3 -m pip download --quiet --no-deps --only-binary=:all: "$PACKAGE==$VERSION" -d "$DIR/wheels" >&2
WHEEL=$(ls "$DIR"/wheels/"${PACKAGE//-/_}"-"$VERSION"-*.whl | head -n 1)
python3 - "$WHEEL" "$DIR/lib" <<'PY' >&2
import os, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist()
             if n.startswith("onnxruntime/capi/lib") and ".so" in os.path.basename(n)]
    if not names:
        sys.exit(f"{wheel} holds no onnxruntime/capi/lib*.so*")
    for n in names:
        with z.open(n) as src, open(os.path.join(out, os.path.basename(n)), "wb") as dst:
            dst.write(src.read())
        print(f"extracted {os.path.basename(n)}")
PY
[ -f "$LIB" ] || { echo "error: $WHEEL did not contain libonnxruntime.so.$VERSION" >&2; exit 1; }
touch "$MARK"
echo "$LIB"
