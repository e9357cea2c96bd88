#!/usr/bin/env bash
# The self-healing scenario, end to end, in a fresh temporary Git repository:
# train a sensor-failure model on the base data and promote it, score a clean
# batch (healthy), then a shifted batch (alert), retrain and promote a better
# model, and show the monitoring and registry histories.
#
#   examples/drift_scenario.sh            (needs `pip install .` first)
#   PYTHON=/path/to/python examples/drift_scenario.sh
#   CLEANUP=1 examples/drift_scenario.sh  (remove the repository afterwards)
set -euo pipefail

# shellcheck source=examples/_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
# `mlops monitor` exits 1 on an alert: show the code instead of stopping the script.
expect() {
    local want="$1"; shift
    local code=0
    "$@" || code=$?
    printf '(exit code %s)\n' "$code"
    if [ "$code" != "$want" ]; then
        echo "drift_scenario.sh: expected exit code $want from: $*" >&2
        exit 1
    fi
}

new_example_repo drift

step python src/make_data.py
python src/make_data.py

step mlops init '&&' mlops add data/train.csv data/test.csv
mlops init
mlops add data/train.csv data/test.csv
printf 'batches/\nincoming/\n*.html\n' >> .gitignore
git add -A && git commit -q -m "sensor example: base data"

step mlops run
mlops run

step mlops model register sensor models/model.joblib --promote production
mlops model register sensor models/model.joblib --promote production
git add -A && git commit -q -m "first model"

mkdir -p incoming
step "a clean batch arrives: cp batches/clean.csv incoming/2024-05-01.csv"
cp batches/clean.csv incoming/2024-05-01.csv
step mlops monitor
expect 0 mlops monitor

step "a shifted batch arrives: cp batches/shifted.csv incoming/2024-05-02.csv"
cp batches/shifted.csv incoming/2024-05-02.csv
step mlops monitor --html report.html
expect 1 mlops monitor --html report.html

step mlops monitor --retrain --data incoming/2024-05-02.csv
expect 0 mlops monitor --retrain --data incoming/2024-05-02.csv
git add -A && git commit -q -m "retrained on the summer batch"

step mlops monitor history
mlops monitor history

step mlops model history sensor
mlops model history sensor

printf '\nThe example repository is in %s (HTML report: %s/report.html)\n' "$repo" "$repo"
