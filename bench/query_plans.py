"""The SQL the C-FIND query engine runs for the ``find-1m`` queries, with its query plans.

    python -m bench.query_plans                      # the cached 1M SQLite index
    python -m bench.query_plans --db postgresql://...  # a database filled by bench.fill_index
    python -m bench.query_plans --time 20            # and each statement's median time

Each query of ``bench.find_queries`` runs once through ``pacsbox.archive.query.Query`` (as the
C-FIND SCP runs it), every statement it sends is recorded, and each is explained with its
parameters: ``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN`` on PostgreSQL. A full scan of a
table (SQLite ``SCAN patients|studies|series|instances``, PostgreSQL ``Seq Scan on ...``) is
flagged; the exit status is 1 if one of studies, series or instances was scanned by a query
that an index can serve (a hash join over the 3,000 patients is PostgreSQL's sound choice).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time

_TABLES = "patients|studies|series|instances"
_FULL_SCAN = {
    "sqlite": re.compile(rf"\bSCAN ({_TABLES})\b(?! USING (COVERING )?INDEX)"),
    "postgresql": re.compile(rf"Seq Scan on ({_TABLES})\b"),
}


def _short(sql: str, width: int = 160) -> str:
    text = " ".join(sql.split())
    text = re.sub(r"(\?|%\(\w+\)s)(, (\?|%\(\w+\)s))+", r"\1, ...", text)  # IN lists
    return text if len(text) <= width else text[: width - 3] + "..."


def explain(conn, sql: str, parameters) -> list[str]:
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, parameters).all()
        parents: dict[int, int] = {0: -1}
        lines = []
        for node, parent, _, detail in rows:
            parents[node] = parents.get(parent, -1) + 1
            lines.append("  " * parents[node] + detail)
        return lines
    return [row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql, parameters).all()]


def run(url: str, repeats: int, out=sys.stdout) -> int:
    from sqlalchemy import event

    from pacsbox.archive import Index
    from pacsbox.archive.query import Query, QueryOptions
    from pacsbox.services.qr_models import Model

    from .find_queries import QUERIES

    scans = bad = 0
    with Index.open(url) as index, index.engine.connect() as conn:
        dialect = conn.dialect.name
        print(f"# {index.engine.url.render_as_string()} ({dialect}), {index.stats()}", file=out)
        recorded: list[tuple[str, object]] = []

        @event.listens_for(conn, "before_cursor_execute")
        def record(_conn, _cursor, statement, parameters, _context, _many) -> None:
            if statement.lstrip().upper().startswith("SELECT"):  # not the BEGIN of a listener
                recorded.append((statement, parameters))

        for query in QUERIES:
            recorded.clear()
            model_query = Query(Model.STUDY_ROOT, query.identifier(), QueryOptions("PACSBOX"))
            t0 = time.perf_counter()
            matches = sum(1 for _ in model_query.run(conn))
            whole = time.perf_counter() - t0
            statements = list(recorded)
            print(f"\n## {query.id}: {query.label} -> {matches} matches "
                  f"(Query.run, responses built: {whole * 1e3:.1f} ms)", file=out)  # fmt: skip
            for sql, parameters in statements:
                timing = ""
                if repeats:
                    times = []
                    for _ in range(repeats):
                        t0 = time.perf_counter()
                        conn.exec_driver_sql(sql, parameters).all()
                        times.append(time.perf_counter() - t0)
                    timing = f"  [{statistics.median(times) * 1e3:.2f} ms]"
                print(f"- {_short(sql)}{timing}", file=out)
                for line in explain(conn, sql, parameters):
                    flag = ""
                    scan = _FULL_SCAN[dialect].search(line)
                    if scan:
                        flag, scans = "   <-- full scan", scans + 1
                        if scan.group(1) != "patients" and not query.full_scan:
                            flag, bad = flag + " (unexpected)", bad + 1
                    print(f"      {line}{flag}", file=out)
            conn.rollback()
    print(f"\n{scans} full table scan(s), {bad} unexpected", file=out)
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.query_plans", description=__doc__.split("\n")[0]
    )
    p.add_argument("--db", metavar="URL", help="default: the cached 1M SQLite index")
    p.add_argument("--time", type=int, default=0, metavar="N",
                   help="run each statement N times and show its median time")  # fmt: skip
    args = p.parse_args(argv)
    url = args.db
    if url is None:
        from .fill_index import cached_index

        url = f"sqlite:///{cached_index()}"
    return run(url, args.time)


if __name__ == "__main__":
    sys.exit(main())
