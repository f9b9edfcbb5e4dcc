#!/bin/sh
# The one command: benchmarks/run.sh [--pairs N] [--scale] [--out FILE], or the broad crawl:
# benchmarks/run.sh --broad [--hosts N ...]; see benchmarks/README.md.
if [ "$1" = "--broad" ]; then
    shift
    exec python3 "$(dirname "$0")/broad.py" "$@"
fi
exec python3 "$(dirname "$0")/run.py" "$@"
