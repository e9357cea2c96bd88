#!/usr/bin/env bash
# The loop, end to end, in a fresh temporary Git repository: train and promote a
# sensor-failure model, serve it, send clean then shifted traffic over HTTP, let the
# prediction logs become batches, join the labels, see the drift, retrain and promote
# while requests keep coming, and watch the server switch to the new version.
#
#   examples/serve_loop.sh            (needs `pip install '.[serve]'` first)
#   PYTHON=/path/to/python examples/serve_loop.sh
#   CLEANUP=1 examples/serve_loop.sh  (remove the repository afterwards)
set -euo pipefail

# shellcheck source=examples/_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
expect() {
    local want="$1"; shift
    local code=0
    "$@" || code=$?
    printf '(exit code %s)\n' "$code"
    if [ "$code" != "$want" ]; then
        echo "serve_loop.sh: expected exit code $want from: $*" >&2
        exit 1
    fi
}
pids=()
stop_all() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap 'stop_all; cleanup_work' EXIT
get() { "$PYTHON" -c "import json, sys, urllib.request as u; print(json.load(u.urlopen(sys.argv[1]))[sys.argv[2]])" "$@"; }
newest_log() { ls -t incoming/predictions-*.parquet | head -1; }
# The log is written off the request path: wait (bounded) until N files are closed.
wait_logs() {
    for _ in $(seq 300); do
        [ "$(ls incoming/predictions-*.parquet 2>/dev/null | wc -l)" -ge "$1" ] && return 0
        sleep 0.1
    done
    echo "serve_loop.sh: the prediction log did not close" >&2; exit 1
}

new_example_repo drift
python src/make_data.py > /dev/null
mlops init > /dev/null
mlops add data/train.csv data/test.csv > /dev/null
printf 'batches/\nincoming/\n*.csv\n*.log\n*.txt\n' >> .gitignore
git add -A && git commit -q -m "sensor example: base data"
step mlops run '&&' mlops model register sensor models/model.joblib --promote production
mlops run > /dev/null
mlops model register sensor models/model.joblib --promote production
git add -A && git commit -q -m "first model"

port="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"
step "mlops serve sensor@production --port $port --log-rows 400 --poll 0.5 &"
# Not through the mlops shell function: $! must be the server itself, for kill -TERM.
"$PYTHON" -m mlops serve sensor@production --port "$port" --log-rows 400 --poll 0.5 \
    > serve.log 2>&1 &
server=$!
pids+=("$server")
for _ in $(seq 300); do
    get "$url/health/ready" status > /dev/null 2>&1 && break
    kill -0 "$server" 2>/dev/null || { cat serve.log; exit 1; }
    sleep 0.2
done
echo "ready: $(get "$url/version" model):$(get "$url/version" version)"

step "clean traffic: python src/traffic.py $url batches/clean.csv clean labels-clean.csv"
python src/traffic.py "$url" batches/clean.csv clean labels-clean.csv
wait_logs 1
echo "closed prediction log (400 rows): $(newest_log)"
step mlops monitor label labels-clean.csv '&&' mlops monitor
mlops monitor label labels-clean.csv
expect 0 mlops monitor

step "shifted traffic: python src/traffic.py $url batches/shifted.csv hot labels-hot.csv"
python src/traffic.py "$url" batches/shifted.csv hot labels-hot.csv
wait_logs 2
hot="$(newest_log)"
step mlops monitor label labels-hot.csv '&&' mlops monitor
mlops monitor label labels-hot.csv
expect 1 mlops monitor

step "requests keep coming (python src/traffic.py ... --loop answers.txt &) while we heal"
python src/traffic.py "$url" batches/clean.csv live --loop answers.txt &
pids+=("$!")
step mlops monitor --retrain --data "$hot"
expect 0 mlops monitor --retrain --data "$hot"
for _ in $(seq 300); do
    [ "$(get "$url/version" version)" = 2 ] && break
    sleep 0.2
done
sleep 1
kill "${pids[-1]}"
step "what the server answered meanwhile (status version: count)"
sort answers.txt | uniq -c
echo "server: $(get "$url/version" model):$(get "$url/version" version)"
grep "now serving" serve.log
if grep -qv '^200 ' answers.txt; then echo "serve_loop.sh: a request failed" >&2; exit 1; fi
[ "$(get "$url/version" version)" = 2 ] || { echo "serve_loop.sh: no switch" >&2; exit 1; }

step "kill -TERM the server: the open prediction log is closed"
kill -TERM "$server"
wait "$server" || true
grep "stopped:" serve.log
git add -A && git commit -q -m "retrained on the summer traffic"

step mlops monitor history
mlops monitor history
printf '\nThe example repository is in %s\n' "$repo"
