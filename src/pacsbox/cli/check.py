"""`pacsbox check`: is the archive's index consistent with its files? ``--repair`` fixes it.

For `pacsbox serve`'s archive (``--data DIR``, ``--db URL``, ``--config FILE``, read as serve
reads them) or a `pacsbox dcmqrscp` one (``-c dcmqrscp.cfg [--db URL]``: its storage areas).
Prints a summary (``-v``: each finding; ``--json``: everything, for scripts) and exits 0
when consistent, 1 when not (after ``--repair``: when something is left), 2 when it cannot
run. The work is in pacsbox.archive.check; docs/reliability.md says what it finds and does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

from ..log import log
from .common import DcmtkArgumentParser


def parser() -> DcmtkArgumentParser:
    p = DcmtkArgumentParser(
        "check",
        "check the archive's index against its files (and repair it)",
        epilog="exit status: 0 consistent, 1 inconsistent (or not fully repaired), 2 cannot check",
    )
    serve = p.add_argument_group("pacsbox serve's archive (as serve reads these)")
    serve.add_argument("--data", help="the archive's folder (default: ./pacs-data)")
    serve.add_argument("--db", metavar="URL",
                       help="index database (default: SQLite in the --data folder; with -c: "
                            "dcmqrscp's default, pacsbox-index.sqlite next to the file)")  # fmt: skip
    serve.add_argument("--config", metavar="FILE", help="serve's TOML configuration file")
    qr = p.add_argument_group("pacsbox dcmqrscp's archive")
    qr.add_argument("-c", "--dcmqrscp-config", metavar="FILE",
                    help="dcmqrscp.cfg: check its storage areas (with --db as dcmqrscp had)")  # fmt: skip
    what = p.add_argument_group("what to do")
    what.add_argument("--repair", action="store_true",
                      help="remove rows whose file is gone, index files from their header, "
                           "set aside files that are not whole, delete stale temp files")  # fmt: skip
    what.add_argument("--stale-after", type=float, default=60.0, metavar="MINUTES",
                      help="a temp file no process here has open and not written for this "
                           "long is left over (default: 60; 0: any not open)")  # fmt: skip
    what.add_argument("--json", action="store_true", help="print the report as JSON")
    what.add_argument("-v", "--verbose", action="store_true", help="list each finding")
    what.add_argument("-d", "--debug", action="store_true", help="debug log")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    from .common import configure_logging

    args.quiet, args.log_level = False, None
    verbose = args.verbose
    args.verbose = False  # -v lists findings; the log stays at warnings
    configure_logging(args)
    try:
        roots, url, skip = _archive(args)
    except _CannotCheck as exc:
        log.critical("%s", exc)
        return 2
    from ..archive import Index
    from ..archive.check import check, repair

    try:
        index = Index.open(url)
    except Exception as exc:
        log.critical("Cannot open the index %s: %s (pass the --db the server runs with)",
                     _safe(url), exc)  # fmt: skip
        return 2
    from sqlalchemy.exc import SQLAlchemyError

    stale_after = max(0.0, args.stale_after) * 60
    try:
        report = check(index, roots, stale_after=stale_after, skip=skip)
        before = None
        if args.repair and not report.consistent:
            repair(index, report, roots, stale_after=stale_after)
            before, report = report, check(index, roots, stale_after=stale_after, skip=skip)
    except (OSError, SQLAlchemyError) as exc:
        log.critical("Cannot check the archive: %s (is the index reachable, the storage root "
                     "readable by this user?)", exc)  # fmt: skip
        return 2
    finally:
        index.close()
    if args.json:
        document = report.as_dict()
        document["index"] = _safe(url)
        if before is not None:
            document["repaired"] = before.as_dict()
        print(json.dumps(document, indent=2))
    else:
        if before is not None:
            _print(before, url, verbose=verbose, title="before the repair")
            acted = [f for f in before.findings if f.repair]
            done = [f for f in acted if f.repaired]
            print(f"repair: {len(done)} of {len(acted)} findings dealt with"
                  + ("" if verbose else " (-v says how)"))  # fmt: skip
        _print(report, url, verbose=verbose, title="after the repair" if before else None)
    return 0 if report.consistent else 1


class _CannotCheck(Exception):
    pass


def _archive(args) -> tuple[dict, str, frozenset[Path]]:
    """(storage roots by area, index URL, files under the roots to skip)."""
    if args.dcmqrscp_config:
        if args.data or args.config:
            raise _CannotCheck(
                "-c (dcmqrscp.cfg) and --data/--config (serve) name two archives; give one"
            )
        from ..config.dcmqrscp import ConfigError, load
        from .dcmqrscp import index_url

        try:
            config = load(args.dcmqrscp_config)
        except (OSError, ConfigError) as exc:
            raise _CannotCheck(f"cannot read {args.dcmqrscp_config}: {exc}") from None
        roots = {area.ae_title: Path(area.path) for area in config.areas.values()}
        url = index_url(SimpleNamespace(db=args.db, config=args.dcmqrscp_config))
    else:
        from ..config.native import NativeConfigError
        from . import serve

        serve_args = serve.parser().parse_args([])
        serve_args.data, serve_args.db, serve_args.config = args.data, args.db, args.config
        try:
            config = serve.effective_config(serve_args)
        except NativeConfigError as exc:
            raise _CannotCheck(str(exc)) from None
        files = config.storage.data / "files"
        if not files.is_dir():
            raise _CannotCheck(
                f"{files} is not a folder: no archive there; pass the --data (or --config) "
                "serve runs with"
            )
        # the default area and serve's [areas] (each AE title's rows are in its own folder)
        roots = {None: files, **{a.ae_title: Path(a.path) for a in config.areas.values()}}
        url = config.database_url
    return roots, url, _sqlite_files(url)


def _sqlite_files(url: str) -> frozenset[Path]:
    """The SQLite index and its companions, should they be under a storage root."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return frozenset()
    db = Path(parsed.database).resolve()
    suffixes = ("", "-wal", "-shm", "-journal", "-writer")  # -writer: Index's flock file
    return frozenset(db.with_name(db.name + s) for s in suffixes)


def _print(report, url: str, *, verbose: bool, title: str | None) -> None:
    from ..archive.check import KINDS

    head = f"{title}: " if title else ""
    state = "consistent" if report.consistent else "INCONSISTENT"
    roots = ", ".join(f"{area}: {path}" if area else path for area, path in report.roots.items())
    print(f"{head}archive {state}: {report.rows} index rows ({_safe(url)}), "
          f"{report.files} files ({roots})")  # fmt: skip
    for kind, count in report.counts().items():
        if count:
            print(f"  {count:6d} {KINDS[kind][0]}")
    if verbose:
        for f in report.findings:
            uid = f" {f.sop_instance_uid}" if f.sop_instance_uid else ""
            area = f" [{f.area}]" if f.area else ""
            print(f"{f.kind}{area}: {f.path or 'index'}{uid}: {f.detail}")
            if f.repair:
                print(f"  -> {f.repair}")
    elif not report.consistent and title is None:
        print("(-v lists them; --repair fixes what can be fixed)")
    elif not report.consistent and title == "after the repair":
        print("(-v lists what is left and why)")


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
