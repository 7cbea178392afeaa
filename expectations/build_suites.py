"""python -m expectations.build_suites — rewrite expectations/suites/*.json from expectations/_suites.py."""

from expectations._suites import build_suites

if __name__ == "__main__":
    for path in build_suites():
        print(path)
