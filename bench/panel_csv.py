"""Write a many-series panel that ships inside statsmodels as one long-format CSV.

    PYTHONPATH=src python bench/panel_csv.py macro.csv

The twelve quarterly US series of statsmodels' ``macrodata`` (1959Q1..2009Q3, 203 quarters
each: realgdp, realcons, realinv, realgovt, realdpi, cpi, m1, tbilrate, unemp, pop, infl,
realint) as rows ``series,quarter,value`` (quarter like ``1959-Q1``), the input of the global
model's run in docs/forecasting.md::

    lstmlab forecast train macro.csv --id series --time quarter --value value --horizon 8 \\
        --season 4 --out runs/macro

Needs statsmodels (pinned in requirements/dev.txt).
"""

from __future__ import annotations

import argparse

from lstmlab.training.checkpoint import atomic_write_text


def macrodata_long() -> str:
    import statsmodels.api as sm

    d = sm.datasets.macrodata.load_pandas().data
    names = [c for c in d.columns if c not in ("year", "quarter")]
    rows = ["series,quarter,value"]
    for name in names:
        for year, q, v in zip(d["year"], d["quarter"], d[name]):
            rows.append(f"{name},{int(year)}-Q{int(q)},{float(v)!r}")
    return "\n".join(rows) + "\n"


def build_parser() -> argparse.ArgumentParser:
    """The script's command line, built without running anything (tests/test_docs.py parses
    the documented commands with it)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", help="the CSV file to write")
    return p


def main() -> None:
    atomic_write_text(build_parser().parse_args().out, macrodata_long())


if __name__ == "__main__":
    main()
