"""Send a batch's rows to a running `mlops serve`, as production traffic would arrive.

    python src/traffic.py URL BATCH.csv PREFIX LABELS.csv   rows in requests of 20, ids
                                                            PREFIX-0, PREFIX-1, ...; the
                                                            ground truth goes to LABELS.csv
    python src/traffic.py URL BATCH.csv PREFIX --loop OUT   repeat until stopped; each
                                                            answer's status and version
                                                            is appended to OUT
"""

import csv
import json
import sys
import urllib.error
import urllib.request

url, batch, prefix, target = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[-1]
loop = "--loop" in sys.argv
with open(batch, newline="") as f:
    rows = list(csv.DictReader(f))
features = ["temperature", "vibration", "pressure", "line"]


def post(body, request_id):
    request = urllib.request.Request(
        url + "/predict",
        json.dumps(body).encode(),
        {"Content-Type": "application/json", "X-Request-ID": request_id},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def record(row):
    return {k: (row[k] if k == "line" else float(row[k])) for k in features}


if loop:
    i = 0
    with open(target, "a") as out:
        while True:
            status, answer = post([record(rows[i % len(rows)])], f"{prefix}-{i}")
            out.write(f"{status} {answer.get('version', '-')}\n")
            out.flush()
            i += 1
labels = []
for n, start in enumerate(range(0, len(rows), 20)):
    chunk = rows[start : start + 20]
    status, answer = post([record(r) for r in chunk], f"{prefix}-{n}")
    if status != 200:
        sys.exit(f"traffic.py: {status}: {answer}")
    labels += [(f"{prefix}-{n}", i, r["failure"]) for i, r in enumerate(chunk)]
with open(target, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["request_id", "row", "failure"])
    writer.writerows(labels)
print(f"sent {len(rows)} rows in {n + 1} requests; their labels are in {target}")
