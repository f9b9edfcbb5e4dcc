#!/usr/bin/env bash
# usage: benchmarks/resume_check.sh [PAGES]
# Issue #3's acceptance run: a crawl of the bench site killed with SIGKILL three times and stopped
# with SIGINT once, each followed by `crawler crawl --db SAME`; then counts what nginx served.
# Needs ../shared/bench (gensite.py, nginx.sh) beside the project.
set -eu
here=$(cd "$(dirname "$0")" && pwd); bench=${BENCH:-$here/../../shared/bench}
pages=${1:-5000} port=${PORT:-8392}
crawler=${CRAWLER:-crawler}
site=/tmp/bench-site-$pages
[[ -f $site/index.html ]] || python3 "$bench/gensite.py" "$site" --pages "$pages" >/dev/null
work=$(mktemp -d); log=$work/access.log
ACCESS_LOG=$log "$bench/nginx.sh" start "$site" "$port"
trap '"$bench/nginx.sh" stop "$site" "$port"; rm -rf "$work"' EXIT
db=$work/job.db
requests() { grep -vc robots.txt "$log" 2>/dev/null || true; }
interrupt() {  # run the crawl until nginx has served $1 requests, then send signal $2
  $crawler crawl "${@:3}" --db "$db" --concurrency 64 --per-host 64 >"$work/out" 2>&1 &
  local pid=$!
  while [[ $(requests) -lt $1 ]] && kill -0 $pid 2>/dev/null; do sleep 0.01; done
  kill "-$2" $pid 2>/dev/null || true
  { wait $pid; } 2>/dev/null; local rc=$?
  echo "  SIG$2 at $(requests) requests: exit $rc"
}
step=$(( (pages + pages / 50) / 5 ))
set +e
interrupt $step KILL "http://127.0.0.1:$port/"
interrupt $((2 * step)) KILL
interrupt $((3 * step)) KILL
interrupt $((4 * step)) INT
$crawler crawl --db "$db" >/dev/null 2>&1; echo "  final resume: exit $?"
set -e
echo "stored: $($crawler stats --db "$db" --json | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["pages"], "pages", s["statuses"], "state", s["state"])')"
echo "requests: $(requests) for $(grep -v robots.txt "$log" | sort -u | wc -l) distinct URLs; most requests for one URL: $(grep -v robots.txt "$log" | sort | uniq -c | sort -rn | head -1 | awk '{print $1}')"
