"""Write data/data.xml: questions in the shape of a Stack Exchange dump (our own, made
up, deterministic), about a third of them tagged python."""

import random
import sys
from pathlib import Path
from xml.sax.saxutils import quoteattr

PYTHON = "python list dict pandas numpy import def class pip venv lambda generator".split()
OTHER = "java spring maven rust cargo javascript react node css html sql join".split()
COMMON = "how do i error when using the with a for get value file code why not".split()


def post(rng: random.Random, row: int) -> str:
    is_python = rng.random() < 0.35
    topical = PYTHON if is_python else OTHER
    words = rng.choices(COMMON, k=rng.randint(4, 9)) + rng.choices(topical, k=rng.randint(1, 4))
    rng.shuffle(words)
    tags = "&lt;python&gt;" if is_python else f"&lt;{rng.choice(OTHER)}&gt;"
    title = " ".join(words[:5])
    body = " ".join(words)
    return (
        f'  <row Id="{row}" PostTypeId="1" Title={quoteattr(title)} '
        f'Body={quoteattr(body)} Tags="{tags}" />\n'
    )


def main(rows: int = 1000, seed: int = 1) -> None:
    rng = random.Random(seed)
    out = Path("data/data.xml")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("<posts>\n" + "".join(post(rng, i) for i in range(rows)) + "</posts>\n")
    print(f"wrote {rows} posts to {out}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
