"""Write the sensor data: the base training and test sets and two incoming batches.

A machine fails when its vibration passes a limit that falls as it runs hotter. The
"shifted" batch comes from a hot summer on production line C: hotter, more line C, and
failures at vibrations the base data never showed failing.
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd


def sample(rows: int, seed: int, shifted: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    temperature = rng.normal(55 if shifted else 25, 5, rows)
    vibration = rng.gamma(2.0, 1.0, rows)
    pressure = rng.normal(100, 10, rows)
    line = rng.choice(["A", "B", "C"], rows, p=[0.2, 0.3, 0.5] if shifted else [0.5, 0.3, 0.2])
    limit = 4.5 - 0.08 * (temperature - 25)
    failure = (vibration > limit).astype(int)
    noise = rng.random(rows) < 0.02  # a few mislabelled rows
    failure[noise] = 1 - failure[noise]
    return pd.DataFrame(
        {
            "temperature": temperature.round(2),
            "vibration": vibration.round(3),
            "pressure": pressure.round(1),
            "line": line,
            "failure": failure,
        }
    )


out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
(out / "data").mkdir(parents=True, exist_ok=True)
(out / "batches").mkdir(parents=True, exist_ok=True)
sample(2000, seed=1).to_csv(out / "data/train.csv", index=False)
sample(600, seed=2).to_csv(out / "data/test.csv", index=False)
sample(400, seed=3).to_csv(out / "batches/clean.csv", index=False)
sample(400, seed=4, shifted=True).to_csv(out / "batches/shifted.csv", index=False)
print("wrote data/train.csv, data/test.csv, batches/clean.csv and batches/shifted.csv")
