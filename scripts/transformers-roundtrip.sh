#!/bin/sh
# Checks that a checkpoint trained by `longcat train` loads in Hugging Face transformers and gives longcat's logits
# (Tests/python_external/test_transformers_roundtrip.py). Outside CI: it installs torch (several GB from PyPI) and
# transformers into a venv. Usage: scripts/transformers-roundtrip.sh [VENV_DIR]   (default .build/venv-transformers)
set -eu
cd "$(dirname "$0")/.."
V=${1:-.build/venv-transformers}
[ -x "$V/bin/python" ] || python3 -m venv "$V"
"$V/bin/pip" install --quiet torch transformers safetensors pytest
swift build --product longcat
"$V/bin/python" -m pytest -s -q -p no:cacheprovider Tests/python_external/test_transformers_roundtrip.py
