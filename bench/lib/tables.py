"""tables.py - the arithmetic and input of bench's report scripts."""

import statistics


def median(xs):
    return statistics.median(xs) if xs else None


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt(x, spec):
    return "n/a" if x is None else format(x, spec)


def read_tsv(path):
    """Rows of a tab-separated file as lists of strings; none if it is missing."""
    rows = []
    try:
        with open(path) as f:
            for line in f:
                line = line.rstrip("\n")
                if line:
                    rows.append(line.split("\t"))
    except FileNotFoundError:
        pass
    return rows
