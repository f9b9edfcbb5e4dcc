#!/bin/sh
# The one command: benchmarks/run.sh [--pairs N] [--scale] [--out FILE], or the broad crawl:
# benchmarks/run.sh --broad [--hosts N ...], or --workers [--broad] (every core, Redis),
# or --extraction (what rules and structured data cost), or --render (what rendering costs), or --overhead
# (what --header/--cookies, --metrics, --events and --render auto cost); see benchmarks/README.md.
if [ "$1" = "--broad" ]; then
    shift
    exec python3 "$(dirname "$0")/broad.py" "$@"
fi
if [ "$1" = "--extraction" ]; then
    shift
    exec python3 "$(dirname "$0")/extraction.py" "$@"
fi
if [ "$1" = "--render" ]; then
    shift
    exec python3 "$(dirname "$0")/render.py" "$@"
fi
if [ "$1" = "--overhead" ]; then
    shift
    exec python3 "$(dirname "$0")/overhead.py" "$@"
fi
if [ "$1" = "--workers" ]; then
    shift
    exec python3 "$(dirname "$0")/workers.py" "$@"
fi
exec python3 "$(dirname "$0")/run.py" "$@"
