"""Split data/raw.csv into data/prepared/train.csv and test.csv."""

from pathlib import Path

import yaml
import pandas as pd
from sklearn.model_selection import train_test_split

params = yaml.safe_load(Path("params.yaml").read_text())["prepare"]
frame = pd.read_csv("data/raw.csv")
train, test = train_test_split(
    frame,
    test_size=params["test_size"],
    random_state=params["seed"],
    stratify=frame["species"],
)
out = Path("data/prepared")
out.mkdir(parents=True, exist_ok=True)
train.to_csv(out / "train.csv", index=False)
test.to_csv(out / "test.csv", index=False)
print(f"prepared {len(train)} training and {len(test)} test rows")
