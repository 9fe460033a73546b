"""`pacsbox findscu`: DICOM query (C-FIND) SCU with DCMTK findscu's options.

With -v the log is DCMTK's (the request, then "Find Response: 1 (Pending)" and a dump of
each identifier); without it the matches are printed as a table, or as --json / --csv for
scripts. Deliberate differences from DCMTK 3.6.7's findscu:
- the exit status is 1 when the peer ends the query with a failure status (DCMTK: 0);
- a refused information model names the flag of the others (-S, -P, -O, -W);
- text is decoded with the responses' Specific Character Set; a -k value that is not ASCII
  adds Specific Character Set ISO_IR 192 (DCMTK sends such bytes unlabelled);
- -X numbers the files of the whole run rsp0001.dcm, rsp0002.dcm ... without gaps (DCMTK
  also counts each final response, so a second query of --repeat starts at rsp0005 after
  three matches), and writes them as received (DCMTK re-encodes them).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from pathlib import Path

from ..log import log
from .common import (
    DcmtkArgumentParser,
    add_general_options,
    add_network_options,
    network_timeouts,
    positive_int,
    run_tool,
)
from .syntax_options import add_scu_syntax_options, scu_proposal


class _Parser(DcmtkArgumentParser):
    """Query files may come before or after the options, as DCMTK allows (plain argparse
    stops taking positionals after the first option that follows them)."""

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        return self.parse_intermixed_args(args, namespace)


def parser() -> DcmtkArgumentParser:
    p = _Parser("findscu", "DICOM query (C-FIND) SCU")
    p.add_argument("peer", help="hostname of DICOM peer")
    p.add_argument("port", type=int, help="tcp/ip port number of peer")
    p.add_argument("files", nargs="*", metavar="dcmfile-in", help="DICOM query file(s)")
    add_general_options(p)
    g = p.add_argument_group("override matching keys")
    g.add_argument("-k", "--key", action="append", default=[], metavar="KEY",
                   help='[k]ey: gggg,eeee="str", path or dict. name="str": override matching key '
                        "(a VR may follow a private tag: (0009,1001):LO=str)")  # fmt: skip
    g = p.add_argument_group("query information model")
    models = g.add_mutually_exclusive_group()
    models.add_argument("-W", "--worklist", dest="model", action="store_const", const="worklist",
                        help="use modality worklist information model (default, as DCMTK)")  # fmt: skip
    models.add_argument("-P", "--patient", dest="model", action="store_const", const="patient",
                        help="use patient root information model")  # fmt: skip
    models.add_argument("-S", "--study", dest="model", action="store_const", const="study",
                        help="use study root information model")  # fmt: skip
    models.add_argument("-O", "--psonly", dest="model", action="store_const",
                        const="patient-study-only",
                        help="use patient/study only information model")  # fmt: skip
    p.set_defaults(model="worklist")
    add_network_options(p, aet="FINDSCU")
    g = p.add_argument_group("proposed transmission transfer syntaxes")
    add_scu_syntax_options(g, storage=False)
    g = p.add_argument_group("other network options")
    g.add_argument("--repeat", type=positive_int, default=1, metavar="N", help="repeat n times")
    g.add_argument("--abort", action="store_true", help="abort association instead of releasing it")
    g.add_argument("--cancel", type=positive_int, metavar="N",
                   help="cancel after n responses (default: never)")  # fmt: skip
    g = p.add_argument_group("output options")
    g.add_argument("-od", "--output-directory", default=".", metavar="DIR",
                   help='write output files to existing directory d (default: ".")')  # fmt: skip
    shown = g.add_mutually_exclusive_group()
    shown.add_argument("+sr", "--show-responses", dest="show_responses", action="store_const",
                       const=True, help="always output responses to the logger")  # fmt: skip
    shown.add_argument("-sr", "--hide-responses", dest="show_responses", action="store_const",
                       const=False, help="do not output responses to the logger")  # fmt: skip
    g.add_argument("-X", "--extract", action="store_true",
                   help="extract responses to DICOM file (rsp0001.dcm...)")  # fmt: skip
    g.add_argument("-Xlo", "--limit-output", type=positive_int, metavar="N",
                   help="limit number of responses extracted to file to n (default: unlimited)")  # fmt: skip
    printed = g.add_mutually_exclusive_group()
    printed.add_argument("--json", action="store_true",
                         help="print the matches to stdout as a JSON array of objects")  # fmt: skip
    printed.add_argument("--csv", action="store_true",
                         help="print the matches to stdout as CSV, one row per match")  # fmt: skip
    return p


def _identifiers(args) -> list[tuple[str, object]]:
    """(label, Dataset) of each query: every query file with the -k keys on top, or the keys
    alone (DCMTK: the keys override what a file holds)."""
    from ..query_keys import build_identifier, parse_key

    keys = [parse_key(k) for k in args.key]  # bad keys fail before anything is sent
    if not args.files:
        return [("-k", build_identifier(keys))]
    queries = []
    for name in args.files:
        ds = _read_query_file(name)
        queries.append((name, build_identifier(keys, ds)))
    return queries


def _read_query_file(name: str):
    """A query file: DICOM with a meta header, or (as DCMTK reads too) a bare data set."""
    from pydicom import dcmread
    from pydicom.datadict import dictionary_has_tag
    from pydicom.errors import InvalidDicomError

    problem = None
    try:
        try:
            ds = dcmread(name)
        except InvalidDicomError:
            with _quiet_pydicom():  # its warnings about the guesswork are not for the user
                ds = dcmread(name, force=True)
            # forced, anything parses: accept it only if every tag is a known or private one
            tags = ds.keys()  # a Dataset iterates over its elements, which would decode them
            unknown = [t for t in tags if t.group % 2 == 0 and not dictionary_has_tag(t)]
            if unknown or not len(ds):
                problem = "it is not a DICOM file"
    except (OSError, ValueError, EOFError, KeyError, TypeError) as exc:
        problem = str(exc)
    if problem:
        raise ValueError(
            f"Cannot read query file {name}: {problem}. Give a DICOM file (e.g. made with "
            "dump2dcm), or leave it out and give the query as -k keys."
        )
    ds.file_meta = None  # type: ignore[assignment]
    return ds


@contextlib.contextmanager
def _quiet_pydicom():
    pydicom_log = logging.getLogger("pydicom")
    level = pydicom_log.level
    pydicom_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        pydicom_log.setLevel(level)


def _show_in_log(args) -> bool:
    # DCMTK: responses go to the verbose log unless they are extracted to files (-X)
    if args.show_responses is not None:
        return args.show_responses
    return not args.extract


async def run(args) -> int:
    from ..net.association import Association
    from ..net.requestor import build_rq
    from ..services.find_scu import (
        MODEL_NAMES,
        FindError,
        find,
        find_proposal,
        model_alternatives,
    )
    from ..services.qr_models import Model
    from ..ul.diagnosis import NoAcceptedContextError

    queries = _identifiers(args)
    output = Path(args.output_directory)
    if args.extract and not output.is_dir():
        raise ValueError(f"Output directory {output} does not exist; create it or change -od.")
    model = Model(args.model)
    rq = build_rq(
        calling_ae=args.aetitle,
        called_ae=args.call,
        proposals=[find_proposal(model, scu_proposal(args))],  # type: ignore[arg-type]
        max_pdu_length=args.max_pdu,
    )
    timeouts = network_timeouts(args)
    try:
        assoc = await Association.connect(args.peer, args.port, rq, timeouts=timeouts)
    except NoAcceptedContextError as exc:
        # the generic hint speaks of storage; say which flag selects a model the peer has
        exc.diagnosis.hint = (
            f"The peer (AE '{args.call}') does not accept C-FIND in the "
            f"{MODEL_NAMES[model]} information model"
            + (", findscu's default (-W), as in DCMTK" if model is Model.WORKLIST else "")
            + f". To query with another model pass {model_alternatives(model)}"
            + (" (a PACS usually offers -S)." if model is Model.WORKLIST else ".")
        )
        raise
    show = _show_in_log(args) and log.isEnabledFor(logging.INFO)
    matches: list = []
    extracted = 0
    failure: FindError | None = None
    try:
        for _ in range(args.repeat):
            for _label, identifier in queries:
                async for result in find(assoc, model, identifier, cancel_after=args.cancel):
                    if not result.pending:
                        continue
                    if show:
                        _log_response(result)
                    if args.extract and (
                        args.limit_output is None or extracted < args.limit_output
                    ):
                        extracted += 1
                        _extract(result, output / f"rsp{extracted:04d}.dcm", model)
                    if result.identifier is not None:
                        matches.append(result.identifier)
    except FindError as exc:
        failure = exc  # the association is fine: release it, then report
    except BaseException:
        assoc.abort()
        raise
    if args.abort:
        log.info("Aborting Association")
        assoc.abort()
    else:
        await assoc.release()
    if failure is None or matches:
        _print_matches(matches, args, model)
    if failure is not None:
        raise failure
    return 0


def _log_response(result) -> None:
    from ..dataset_dump import dump_lines

    lines = ["---------------------------", f"Find Response: {result.number} (Pending)", ""]
    if result.raw is not None:
        lines += [*dump_lines(result.raw, result.transfer_syntax), ""]
    log.info("\n".join(lines))


def _extract(result, path: Path, model) -> None:
    """The identifier as a DICOM file: the bytes as received behind a file meta header."""
    from pydicom.uid import generate_uid

    from ..dicomfile import file_meta_bytes
    from ..services.qr_models import SOP_CLASSES
    from ..uids import PACSBOX_UID_ROOT

    # DCMTK names the file's SOP class with its private "generic file" UID; we name the
    # query's SOP class, which says what the file holds
    meta = file_meta_bytes(
        SOP_CLASSES[model].find,
        generate_uid(prefix=f"{PACSBOX_UID_ROOT}.9."),
        result.transfer_syntax,
    )
    path.write_bytes(meta + (result.raw or b""))
    log.info("Writing response dataset to file: %s", path)


def _print_matches(matches: list, args, model) -> None:
    if args.json or args.csv:
        from ..query_keys import dataset_to_dict

        rows = [dataset_to_dict(ds) for ds in matches]
        if args.json:
            import json

            json.dump(rows, sys.stdout, indent=2, ensure_ascii=False)
            sys.stdout.write("\n")
        else:
            _write_csv(rows)
        return
    if args.quiet or log.isEnabledFor(logging.INFO):
        return  # -v / -d: the responses are in the log, as DCMTK shows them
    _print_table(matches, model)


def _write_csv(rows: list[dict]) -> None:
    import csv
    import json

    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column, "")
            if isinstance(value, list) and value and isinstance(value[0], dict):
                value = json.dumps(value, ensure_ascii=False)  # a sequence: its items as JSON
            elif isinstance(value, list):
                value = "\\".join(value)  # DICOM's own separator of values
            cells.append(value)
        writer.writerow(cells)


# Shown in the table only when asked for: they say how, not what, was matched.
_TABLE_HIDDEN = frozenset(("SpecificCharacterSet",))


def _print_table(matches: list, model) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..query_keys import dataset_to_dict

    rows = [dataset_to_dict(ds) for ds in matches]
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(k for k in row if k not in _TABLE_HIDDEN))
    console = Console(soft_wrap=False) if sys.stdout.isatty() else Console(width=250)
    if not rows:
        console.print("No matches.")
        return
    table = Table(title=f"{len(rows)} match{'es' if len(rows) != 1 else ''}")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(c, "")) for c in columns))
    console.print(table)


def _cell(value: object) -> str:
    if isinstance(value, list):
        if value and isinstance(value[0], dict):
            return f"{len(value)} item(s)"
        return "\\".join(value)  # type: ignore[arg-type]
    return str(value)


def main(argv: list[str]) -> int:
    return run_tool(parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
