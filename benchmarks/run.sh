#!/bin/sh
# The one command: benchmarks/run.sh [--pairs N] [--scale] [--out FILE]; see benchmarks/README.md.
exec python3 "$(dirname "$0")/run.py" "$@"
