"""python -m sources.synthetic --people N --seed S --out DIR"""

import argparse
from pathlib import Path

from sources.synthetic import CityConfig, generate_city

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--people", type=int, default=20000)
parser.add_argument("--seed", type=int, default=42)
parser.add_argument("--out", type=Path, default=Path("data"))
args = parser.parse_args()
manifest = generate_city(args.out, CityConfig(people=args.people, seed=args.seed))
for name, rows in manifest.row_counts.items():
    print(f"{rows:>10,}  {name}")
print(f"{manifest.records:,} agency records in {manifest.seconds:.1f} s")
