#!/usr/bin/env bash
# Installs the build in $1 into a temporary prefix, then configures, builds and
# runs the consumer project in $2 against it with find_package(crnn).
set -euo pipefail
build=$1
example=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
test -x "$work/prefix/bin/crnn" || { echo "no bin/crnn in the install prefix"; exit 1; }
test -f "$work/prefix/include/crnn/nn/conv_recurrent.h" || { echo "no headers in the install prefix"; exit 1; }
"$work/prefix/bin/crnn" --version
cmake -S "$example" -B "$work/example" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$work/prefix"
cmake --build "$work/example"
out=$("$work/example/crnn_example")
echo "$out"
# The example's own comments state these shapes (README "The library").
grep -qx "y: \[8, 74, 100\], lengths 74 69 61 49 36 21 9 1" <<<"$out" || { echo "unexpected output"; exit 1; }
