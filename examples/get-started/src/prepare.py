"""Split the posts into data/prepared/train.tsv and test.tsv (label: tagged python)."""

import argparse
import random
import xml.etree.ElementTree as ET
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("data")
parser.add_argument("--split", type=float, required=True)
parser.add_argument("--seed", type=int, required=True)
args = parser.parse_args()

rng = random.Random(args.seed)
out = Path("data/prepared")
out.mkdir(parents=True, exist_ok=True)
counts = {"train": 0, "test": 0}
with open(out / "train.tsv", "w") as train, open(out / "test.tsv", "w") as test:
    for row in ET.parse(args.data).getroot():
        label = int("<python>" in row.get("Tags", ""))
        text = f"{row.get('Title', '')} {row.get('Body', '')}".replace("\t", " ")
        split = "test" if rng.random() < args.split else "train"
        (test if split == "test" else train).write(f"{row.get('Id')}\t{label}\t{text}\n")
        counts[split] += 1
print(f"prepared {counts['train']} training and {counts['test']} test posts")
