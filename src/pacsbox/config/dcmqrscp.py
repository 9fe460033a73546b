"""DCMTK's dcmqrscp.cfg, read the way dcmqrscp 3.6.7 reads it (dcmqrdb/libsrc/dcmqrcnf.cc).

The grammar, as DCMTK implements it (verified against the source and the real binary):

- A line is a comment or blank only when its *first character* is ``#``, LF or CR. An
  indented ``# ...`` is an unknown keyword ``#``, and a ``#`` after a table entry is read as
  one more peer name; both make dcmqrscp refuse the file.
- A global line is ``Keyword value``. The keyword is the first whitespace-delimited word and
  is case-sensitive, so ``NetworkTCPPort=104`` (no blank before ``=``) is the unknown keyword
  ``NetworkTCPPort=104``. Gaps between values are blanks, ``=`` and ``,``.
- A value may be quoted with any of ``" ' ( )``; the quote ends at the next one of them, so
  ``(ACME1, host, 104)`` is one value, split again at gaps. A parenthesised value with a comma
  is an inline peer ``(AETitle, HostName, Port)``; without a comma it is a symbolic name.
- Table lines (between ``X BEGIN`` and ``X END``) start in column 1: dcmqrscp reads an
  indented entry as one whose name is empty, and a line of blanks as an entry with no peers.
- Symbolic names resolve against HostTable entries defined *before* the line (groups of groups
  work; they are flattened when defined). An unknown name, an empty peer list, a quota of zero
  studies or zero bytes, a table without END, or an unknown keyword make dcmqrscp refuse the
  file; so do they here, and the error names the line and the fix.
- Sizes are ``<int>b|kb|mb|gb`` with binary units (1mb = 1024 * 1024) in any case. DCMTK reads
  ``1024xb`` as 1024 bytes and ``1024`` (no ``b``) as "no limit", and any access mode other than
  RW, WR and W as read-only, all without a word. With ``strict=True`` (the default) these
  silent misreadings are errors; with ``strict=False`` they are warnings and the values are
  what dcmqrscp would use, so the verdict "valid or not" is dcmqrscp's own.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path

from pacsbox.errors import PacsboxError

_GAPS = frozenset(" \t\n\v\f\r=,")  # dcmqrcnf.cc isgap(): whitespace, '=' and ','
_QUOTES = frozenset("\"'()")  # isquote(): any of these opens and any of them closes
_LINE_MAX = 511  # fgets() into char[512]: a longer line is read as two lines

MAX_AE_TITLE = 16  # PS3.5 6.2, VR AE
MIN_PDU, MAX_PDU = 4096, 131072  # ASC_MINIMUMPDUSIZE / ASC_MAXIMUMPDUSIZE: outside, dcmqrscp exits
# dcmqrdbi.h: dcmqrscp silently caps quotas at these when it opens a storage area
DCMTK_UPPER_MAX_STUDIES = 500
DCMTK_UPPER_MAX_BYTES_PER_STUDY = 0x40000000

_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}
_FACTORS = {"k": 1024, "m": 1024**2, "g": 1024**3}  # the letter before the final b
_TABLES = ("HostTable", "VendorTable", "AETable")
_KEYWORDS = (
    "NetworkTCPPort",
    "MaxPDUSize",
    "MaxAssociations",
    "UserName",
    "GroupName",
    "SpecificCharacterSet",
    *_TABLES,
)
_DEFAULTS = {"NetworkTCPPort": "its default 104", "MaxPDUSize": "16384", "MaxAssociations": "16"}
_EXAMPLES = {"NetworkTCPPort": 11112, "MaxPDUSize": 16384, "MaxAssociations": 16}
# keywords of older DCMTK versions that dcmqrscp still accepts and ignores
_IGNORED_KEYWORDS = frozenset(
    {
        "ApplicationTitle",
        "ApplicationContext",
        "ImplementationClass",
        "ImplementationVersion",
        "NetworkType",
        "Display",
        "DisplayPort",
    }
)


class ConfigError(PacsboxError):
    """A configuration file dcmqrscp would refuse (or silently misread, in strict mode).

    ``str()`` is ``"{source}:{line}: {what is wrong}; {what to write instead}"``.
    """

    def __init__(self, source: str, line: int, problem: str, fix: str) -> None:
        self.source, self.line, self.problem, self.fix = source, line, problem, fix
        super().__init__(f"{source}:{line}: {problem}; {fix}")


class Access(enum.Enum):
    """Access of peers to a storage area, as written in the AETable."""

    R = "R"
    RW = "RW"
    W = "W"

    @property
    def can_read(self) -> bool:
        # dcmqrscp itself never refuses a query or retrieve on a "W" area; pacsbox does.
        return self is not Access.W

    @property
    def can_write(self) -> bool:
        return self is not Access.R


_ACCESS = {"R": Access.R, "RW": Access.RW, "WR": Access.RW, "W": Access.W}  # writableStorageArea()


@dataclass(frozen=True)
class Host:
    """One peer AE: ``name`` is the HostTable entry that defined it ("" if written inline)."""

    name: str
    ae_title: str
    hostname: str
    port: int

    def written(self) -> str:
        return f"({self.ae_title}, {self.hostname}, {self.port})"


@dataclass(frozen=True)
class StorageArea:
    """One AETable row: the called AE title, its directory, access, quota and peers.

    ``origin`` names what defines the area in messages ("AETable line 12 of F"; `pacsbox
    serve`'s TOML areas say "[areas] line 12 of F"), and ``on_max_studies`` is the area's
    own choice when the server's (--on-max-studies) should not apply (None: it does).
    """

    ae_title: str
    path: str
    access: Access
    max_studies: int
    max_bytes_per_study: int  # -1: no limit (dcmqrscp then uses its 1 GiB ceiling)
    peers: frozenset[str] | None  # AE titles admitted; None = ANY
    peer_names: tuple[str, ...] = ()  # as written: symbolic names or "(AE, host, port)"
    peer_hosts: tuple[Host, ...] = ()  # peer_names resolved, in order
    line: int = field(default=0, compare=False)
    origin: str = field(default="AETable", compare=False)
    on_max_studies: str | None = None


@dataclass(frozen=True)
class DcmqrscpConfig:
    """A parsed dcmqrscp.cfg. ``None`` globals were not written (dcmqrscp: 104, 16384, 16)."""

    port: int | None = None
    max_pdu: int | None = None
    max_associations: int | None = None
    user_name: str | None = None
    group_name: str | None = None
    character_set: tuple[str, ...] | None = None  # SpecificCharacterSet values, as written
    hosts: dict[str, tuple[Host, ...]] = field(default_factory=dict)  # flattened
    host_table: dict[str, tuple[str, ...]] = field(default_factory=dict)  # members as written
    vendors: dict[str, tuple[str, ...]] = field(default_factory=dict)  # vendor -> names
    areas: dict[str, StorageArea] = field(default_factory=dict)  # called AE title -> area
    source: str = field(default="<string>", compare=False)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def area_for(self, called_ae: str) -> StorageArea | None:
        """The storage area of a called AE title (case-sensitive, like DICOM and DCMTK)."""
        return self.areas.get(called_ae)

    def peer(self, ae_title: str) -> Host | None:
        """Where to send a C-MOVE to ``ae_title``: AETable peers first, then the HostTable.

        This is dcmqrscp's lookup order (``peerForAETitle``); the first match wins.
        """
        tables = [a.peer_hosts for a in self.areas.values()] + list(self.hosts.values())
        return next((h for hosts in tables for h in hosts if h.ae_title == ae_title), None)

    def may_connect(self, calling_ae: str, called_ae: str, peer_host: str | None = None) -> bool:
        """Whether dcmqrscp accepts an association (``peerInAETitle``).

        The called AE title must have an AETable row; ANY admits everyone, otherwise the
        calling AE title must be among its peers and, if ``peer_host`` is given, on that host
        (host names compare case-insensitively, AE titles case-sensitively).
        """
        area = self.areas.get(called_ae)
        if area is None:
            return False
        if area.peers is None:
            return True
        return any(
            h.ae_title == calling_ae
            and (peer_host is None or h.hostname.lower() == peer_host.lower())
            for h in area.peer_hosts
        )

    def admitting_entries(self, calling_ae: str) -> list[str]:
        """The table entries that admit ``calling_ae``, for a log line about a refusal."""
        found = []
        for area in self.areas.values():
            if area.peers is None:
                found.append(f"AETable {area.ae_title} (line {area.line}, ANY)")
                continue
            for name in area.peer_names:
                if any(h.ae_title == calling_ae for h in self._resolve(name)):
                    hosts = ", ".join(
                        f"{h.hostname}:{h.port}"
                        for h in self._resolve(name)
                        if h.ae_title == calling_ae
                    )
                    found.append(
                        f"AETable {area.ae_title} (line {area.line}) via {name} ({calling_ae} at {hosts})"
                    )
        return found

    def _resolve(self, written: str) -> tuple[Host, ...]:
        if written in self.hosts:
            return self.hosts[written]
        inline = _INLINE.fullmatch(written)
        return (Host("", inline[1], inline[2], int(inline[3])),) if inline else ()


_INLINE = re.compile(r"\((\S+), (\S+), (\d+)\)")


def load(path: str | Path, *, strict: bool = True) -> DcmqrscpConfig:
    """Read a dcmqrscp.cfg file; see ``parse``."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return parse(text, source=str(path), strict=strict)


def parse(text: str, source: str = "<string>", *, strict: bool = True) -> DcmqrscpConfig:
    """Parse dcmqrscp.cfg text; raise ``ConfigError`` where dcmqrscp would refuse the file.

    ``strict`` (default) also refuses what dcmqrscp silently misreads (``1024xb``, access
    ``RWX``, ``NetworkTCPPort = abc``, AE titles over 16 characters, duplicates...); with
    ``strict=False`` those become ``config.warnings`` and the values dcmqrscp would use.
    """
    return _Parser(text, source, strict).run()


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _next_value(line: str, pos: int) -> tuple[str | None, int]:
    """The next value at ``pos`` and the position after it and its trailing gaps.

    Mirrors dcmqrcnf.cc parsevalues(): a value opened by a quote character runs to the next
    quote character; an unquoted one runs to the next gap. A value not ended by a closing
    quote or a gap (end of text) is no value at all.
    """
    quoted = pos < len(line) and line[pos] in _QUOTES
    start = pos + quoted
    end = start
    while end < len(line) and not (line[end] in _QUOTES if quoted else line[end] in _GAPS):
        end += 1
    if end >= len(line):
        return None, pos
    after = end + quoted
    while after < len(line) and line[after] in _GAPS:
        after += 1
    return line[start:end], after


def _skip_keyword(line: str) -> int:
    """Position of a global line's value: after leading gaps, the keyword and more gaps."""
    pos = 0
    while pos < len(line) and line[pos] in _GAPS:
        pos += 1
    while pos < len(line) and not line[pos].isspace():
        pos += 1
    while pos < len(line) and line[pos] in _GAPS:
        pos += 1
    return pos


def _leading_int(text: str) -> int | None:
    """C's sscanf("%d") / atoi(): optional blanks and sign, then digits; None if no digits."""
    match = re.match(r"\s*([+-]?\d+)", text)
    return int(match[1]) if match else None


class _Parser:
    def __init__(self, text: str, source: str, strict: bool) -> None:
        self.source, self.strict = source, strict
        self.lines = [part + "\n" for part in text.split("\n")]  # fgets() keeps the LF
        if self.lines[-1] == "\n":
            self.lines.pop()
        else:
            self.lines[-1] = self.lines[-1][:-1]
        self.lineno = 0
        self.warnings: list[str] = []
        self.globals: dict[str, object] = {}
        self.hosts: dict[str, tuple[Host, ...]] = {}
        self.host_table: dict[str, tuple[str, ...]] = {}
        self.host_lines: dict[str, int] = {}
        self.vendors: dict[str, tuple[str, ...]] = {}
        self.vendor_lines: dict[str, int] = {}
        self.areas: dict[str, StorageArea] = {}

    # -- reporting ---------------------------------------------------------------------

    def error(self, problem: str, fix: str, line: int | None = None) -> ConfigError:
        return ConfigError(self.source, line or self.lineno, problem, fix)

    def warn(self, problem: str, fix: str) -> None:
        self.warnings.append(f"{self.source}:{self.lineno}: {problem}; {fix}")

    def misread(self, problem: str, fix: str) -> None:
        """Something dcmqrscp accepts but reads differently from what is written."""
        if self.strict:
            raise self.error(problem, fix)
        self.warn(problem, fix)

    # -- the file ------------------------------------------------------------------------

    def _next_line(self) -> str | None:
        if self.lineno >= len(self.lines):
            return None
        line = self.lines[self.lineno]
        self.lineno += 1
        if len(line.encode("utf-8", "surrogateescape")) > _LINE_MAX:
            raise self.error(
                f"line is longer than {_LINE_MAX} bytes and dcmqrscp would read it as two lines",
                "shorten it (a shorter storage path or fewer peers per AETable row)",
            )
        return line

    def run(self) -> DcmqrscpConfig:
        while (line := self._next_line()) is not None:
            if line[:1] in ("#", "\n", "\r"):
                continue
            words = line.split()
            if not words:
                continue  # blanks only: ignored outside tables
            keyword, value_at = words[0], _skip_keyword(line)
            if keyword in _TABLES:
                self._table(keyword, words[1] if len(words) > 1 else "")
            elif keyword in _IGNORED_KEYWORDS:
                self.warn(f"{keyword} is obsolete and ignored by dcmqrscp", "delete the line")
            elif keyword in _KEYWORDS:
                self._global(keyword, line[value_at:])
            else:
                raise self._unknown_keyword(keyword)
        g = self.globals
        return DcmqrscpConfig(
            port=g.get("NetworkTCPPort"),
            max_pdu=g.get("MaxPDUSize"),
            max_associations=g.get("MaxAssociations"),
            user_name=g.get("UserName"),
            group_name=g.get("GroupName"),
            character_set=g.get("SpecificCharacterSet"),
            hosts=self.hosts,
            host_table=self.host_table,
            vendors=self.vendors,
            areas=self.areas,
            source=self.source,
            warnings=tuple(self.warnings),
        )

    def _unknown_keyword(self, keyword: str) -> ConfigError:
        problem = f'unknown keyword "{keyword}" (dcmqrscp refuses the file)'
        known = {k.lower(): k for k in (*_KEYWORDS, *_IGNORED_KEYWORDS)}
        head = re.split(r"[=,]", keyword, maxsplit=1)[0]
        if keyword.startswith("#"):
            fix = "a comment must start in column 1: remove the blanks before '#'"
        elif "=" in keyword and head in _KEYWORDS:
            fix = f"put a blank before '=': write \"{head} = ...\" (dcmqrscp reads the first word as the keyword)"
        elif head.lower() in known:
            fix = f"keywords are case-sensitive: write {known[head.lower()]}"
        else:
            fix = f"use one of {', '.join(_KEYWORDS)}, or start the line with '#' to comment it out"
        return self.error(problem, fix)

    # -- global parameters ---------------------------------------------------------------

    def _global(self, keyword: str, value: str) -> None:
        first = value.split()[0] if value.split() else ""
        rest = value.split(None, 1)[1] if len(value.split()) > 1 else ""
        if keyword in ("UserName", "GroupName"):
            name, _ = _next_value(value, 0)
            if name is None:
                raise self.error(
                    f"{keyword} has no value", f"write {keyword} = dcmtk, or delete the line"
                )
            self.globals[keyword] = name
            return
        if keyword == "SpecificCharacterSet":
            values, pos = [], 0
            while (item := _next_value(value, pos))[0] is not None:
                values.append(item[0])
                pos = item[1]
            self.globals[keyword] = tuple(values)
            return
        # sscanf("%d"): leading digits count, the rest of the line is ignored; no digits at
        # all leave dcmqrscp's default in place
        number = _leading_int(value)
        if rest and not rest.startswith("#"):
            self.misread(
                f'{keyword} has extra text "{rest.strip()}" that dcmqrscp ignores', "delete it"
            )
        if number is None or not re.fullmatch(r"[+-]?\d+", first):
            used = "the leading digits" if number is not None else _DEFAULTS[keyword]
            self.misread(
                f'{keyword} "{first}" is not a whole number (dcmqrscp would use {used})',
                f"write a number, e.g. {keyword} = {_EXAMPLES[keyword]}",
            )
            if number is None:
                return
        {
            "NetworkTCPPort": self._port,
            "MaxPDUSize": self._max_pdu,
            "MaxAssociations": self._max_associations,
        }[keyword](number)

    def _port(self, port: int) -> None:
        if not 1 <= port <= 65535:
            self.misread(
                f"NetworkTCPPort {port} is out of range (dcmqrscp would listen on "
                f"{port & 0xFFFF or 104})",
                "use a port from 1 to 65535 (above 1023 to run without root)",
            )
            port = (port & 0xFFFF) or None
        self.globals["NetworkTCPPort"] = port

    def _max_pdu(self, size: int) -> None:
        if size == 0:
            self.warn("MaxPDUSize 0 means dcmqrscp's default", "write MaxPDUSize = 16384")
            return
        if not MIN_PDU <= size <= MAX_PDU:
            raise self.error(
                f"MaxPDUSize {size} is out of range (dcmqrscp exits: invalid MaxPDUSize)",
                f"use a size from {MIN_PDU} to {MAX_PDU}, e.g. 16384",
            )
        self.globals["MaxPDUSize"] = size

    def _max_associations(self, count: int) -> None:
        if count < 1:
            self.misread(
                f"MaxAssociations {count} would make dcmqrscp "
                + ("refuse every association" if count == 0 else "accept any number"),
                "use 1 or more, e.g. MaxAssociations = 16",
            )
        self.globals["MaxAssociations"] = count

    # -- tables --------------------------------------------------------------------------

    def _table(self, table: str, status: str) -> None:
        if status == "END":
            raise self.error(
                f'"{table} END" without "{table} BEGIN" before it',
                f'add "{table} BEGIN" before the entries, or delete this line',
            )
        if status != "BEGIN":
            raise self.error(
                f'unknown {table} status "{status}"',
                f'write "{table} BEGIN" (upper case) to open the table',
            )
        begin = self.lineno
        read_entry = {
            "HostTable": self._host_entry,
            "VendorTable": self._vendor_entry,
            "AETable": self._ae_entry,
        }[table]
        while (line := self._next_line()) is not None:
            if line[:1] in ("#", "\n", "\r"):
                continue
            words = line.split()
            if words and words[0] == table:
                if len(words) > 1 and words[1] == "END":
                    return
                raise self.error(
                    f'unknown {table} status "{" ".join(words[1:])}" inside the table',
                    f'close the table with "{table} END"',
                )
            if words and words[0] in _TABLES and words[1:2] in (["BEGIN"], ["END"]):
                raise self.error(
                    f'"{words[0]} {words[1]}" inside the {table} (opened on line {begin})',
                    f'close the {table} with "{table} END" first',
                )
            if not words:
                raise self.error(
                    f"a line of blanks inside the {table}: dcmqrscp reads it as an entry without a name and refuses the file",
                    "make the line empty or delete it",
                )
            if line[0].isspace():
                raise self.error(
                    f"indented {table} entry: dcmqrscp reads a blank in column 1 as an entry with an empty name",
                    "start the entry in column 1",
                )
            read_entry(line)
        raise self.error(
            f'"{table} BEGIN" has no "{table} END" (the file ends at line {self.lineno})',
            f'add "{table} END" after the last entry',
            line=begin,
        )

    def _peer_list(
        self, line: str, pos: int, what: str, owner: str = ""
    ) -> tuple[tuple[str, ...], tuple[Host, ...]]:
        """Symbolic names and inline (AE, host, port) peers up to the end of the line.

        A name stands for the hosts of an earlier HostTable entry (already flattened, so a
        group of groups works); inline peers are named ``owner``.
        """
        names: list[str] = []
        hosts: list[Host] = []
        while (item := _next_value(line, pos))[0] is not None:
            value, pos = item
            if "," in value:
                host = self._inline_peer(value, what, owner)
                names.append(host.written())
                hosts.append(host)
                continue
            if value not in self.hosts:
                if owner and value == owner:
                    raise self.error(
                        f'{what} lists itself (dcmqrscp fails on this line: "Memory allocation")',
                        f"list other entries: {owner} = entry1, entry2 (a group of groups is fine)",
                    )
                raise self._undefined_name(value, what)
            names.append(value)
            hosts.extend(self.hosts[value])
        return tuple(names), tuple(hosts)

    def _undefined_name(self, value: str, what: str) -> ConfigError:
        if value.startswith("#"):
            return self.error(
                f'"{value}" in the {what}: dcmqrscp reads a "#" after an entry as one more peer name',
                "put the comment on a line of its own, with '#' in column 1",
            )
        if value == "":
            return self.error(
                f"an empty name in the {what}: dcmqrscp ends a value at a quote, so a quote "
                'inside "( ... )" leaves an empty name (dcmqrscp: Symbolic name "" not defined)',
                "write the inline peer without quotes, e.g. (ACME1, localhost, 1234); "
                "dcmqrscp's HostTable cannot give an AE title with a space",
            )
        if value in ("BEGIN", "END"):
            return self.error(
                f'"{value}" read as a peer name in the {what}', "check the table's BEGIN/END lines"
            )
        if not self.hosts:
            return self.error(
                f'symbolic name "{value}" in the {what}, but no HostTable entry is defined before this line (dcmqrscp: No symbolic names defined)',
                f'define "{value} = (AETITLE, hostname, port)" in a HostTable above this line',
            )
        close = [n for n in self.hosts if n.lower() == value.lower()]
        hint = (
            f'names are case-sensitive: did you mean "{close[0]}"?'
            if close
            else (
                f'define "{value} = (AETITLE, hostname, port)" in the HostTable above this line, or use one of: '
                + ", ".join(self.hosts)
            )
        )
        return self.error(
            f'symbolic name "{value}" in the {what} is not defined in the HostTable', hint
        )

    def _inline_peer(self, value: str, what: str, owner: str) -> Host:
        """``AE, host, port`` (already unquoted): dcmqrscp reads AE and host as values, the port with atoi()."""
        fields = [f.strip() for f in value.split(",")]
        shape = f"({value}) has {len(fields)} fields"
        fix = "write (AETITLE, hostname, port), e.g. (ACME1, localhost, 1234)"
        ae_title, pos = _next_value(value, 0)
        hostname, pos = _next_value(value, pos) if ae_title is not None else (None, pos)
        if hostname is None:
            raise self.error(f"{shape} in the {what}, expected 3", fix)
        port_text = value[pos:].strip()
        port = _leading_int(port_text) or 0
        if len(fields) != 3:
            self.misread(
                f"{shape} in the {what}, expected 3 (dcmqrscp reads AE {ae_title!r}, host {hostname!r}, port {port})",
                fix,
            )
        elif value[:1].isspace():
            self.misread(
                f"blank after '(' in ({value}): dcmqrscp reads an empty AE title and AE {fields[0]!r} as the host",
                "remove the blank after '('",
            )
        elif not re.fullmatch(r"\d+", port_text) or not 1 <= port <= 65535:
            self.misread(
                f'port "{port_text}" in ({value}) is not a port number from 1 to 65535', fix
            )
        if len(ae_title) > MAX_AE_TITLE:
            self.misread(
                f'AE title "{ae_title}" is {len(ae_title)} characters long',
                f"an AE title has at most {MAX_AE_TITLE} characters (PS3.5 6.2)",
            )
        if _is_address(hostname):
            self.warn(
                f"({value}) names its host by address: pacsbox matches the peer's address, "
                "DCMTK's dcmqrscp compares host names and refuses such a peer",
                f"write a host name (e.g. localhost for {hostname}) to keep the file working "
                "with dcmqrscp",
            )
        return Host(owner, ae_title, hostname, port)

    def _host_entry(self, line: str) -> None:
        name, pos = self._entry_name(line, "HostTable")
        members, hosts = self._peer_list(line, pos, f'HostTable entry "{name}"', owner=name)
        if not members:
            raise self.error(
                f'HostTable entry "{name}" has no members',
                f"write {name} = (AETITLE, hostname, port), or {name} = entry1, entry2",
            )
        if name in self.hosts:
            self.misread(
                f'HostTable entry "{name}" is defined twice (first on line {self.host_lines[name]}); dcmqrscp uses the first',
                "rename or delete one of them",
            )
            return
        self.hosts[name] = hosts
        self.host_table[name] = members
        self.host_lines[name] = self.lineno

    def _entry_name(self, line: str, table: str) -> tuple[str, int]:
        name, pos = _next_value(line, 0)
        if name is None:
            raise self.error(
                f"{table} entry {line.strip()} has an unterminated quote",
                'close the quote: "Acme CT Company" = acmeCTcompany',
            )
        return name, pos

    def _vendor_entry(self, line: str) -> None:
        vendor, pos = self._entry_name(line, "VendorTable")
        members, _ = self._peer_list(line, pos, f'VendorTable entry "{vendor}"')
        if not members:
            raise self.error(
                f'VendorTable entry "{vendor}" names no HostTable entry',
                f'write "{vendor}" = hosttable_entry',
            )
        if vendor in self.vendors:
            self.misread(
                f'vendor "{vendor}" is defined twice (first on line {self.vendor_lines[vendor]}); dcmqrscp uses the first',
                'merge the two lines: "Vendor" = entry1, entry2',
            )
            return
        self.vendors[vendor] = members
        self.vendor_lines[vendor] = self.lineno

    def _ae_entry(self, line: str) -> None:
        layout = "write AETITLE /storage/path RW (maxStudies, maxBytesPerStudy) peers|ANY"
        ae_title, pos = _next_value(line, 0)
        path, pos = _next_value(line, pos)
        access_text, pos = _next_value(line, pos) if path is not None else (None, pos)
        quota_at = pos
        quota_text, pos = _next_value(line, pos) if access_text is not None else (None, pos)
        if quota_text is None:
            raise self.error(f'AETable entry "{line.strip()}" has fewer than 5 fields', layout)
        assert ae_title is not None and path is not None
        access = self._access(access_text)
        if line[quota_at] not in _QUOTES:
            raise self.error(
                f'quota "{quota_text}" of {ae_title} is not in parentheses',
                "write the quota as (maxStudies, maxBytesPerStudy), e.g. (100, 1024mb)",
            )
        max_studies, max_bytes = self._quota(quota_text)
        first, after_first = _next_value(line, pos)
        if first is None:
            raise self.error(
                f"AETable entry {ae_title} has no peers",
                "end the line with ANY or HostTable entry names",
            )
        if first == "ANY":
            peers, names, hosts = None, (), ()
            rest = line[after_first:].strip()
            if rest and not rest.startswith("#"):
                self.warn(
                    f'"{rest}" after ANY is ignored by dcmqrscp', "delete it: ANY admits every peer"
                )
        else:
            names, hosts = self._peer_list(line, pos, f"AETable entry {ae_title}")
            peers = frozenset(h.ae_title for h in hosts)
        if len(ae_title) > MAX_AE_TITLE:
            self.misread(
                f'AE title "{ae_title}" is {len(ae_title)} characters long; no association can call it',
                f"an AE title has at most {MAX_AE_TITLE} characters (PS3.5 6.2)",
            )
        if ae_title in self.areas:
            self.misread(
                f'AE title "{ae_title}" has a second AETable row (first on line {self.areas[ae_title].line}); dcmqrscp stores into the first',
                "give each storage area its own AE title",
            )
            return
        self.areas[ae_title] = StorageArea(
            ae_title, path, access, max_studies, max_bytes, peers, names, hosts, self.lineno
        )

    def _access(self, text: str) -> Access:
        if text in _ACCESS:
            return _ACCESS[text]
        self.misread(
            f'unknown access mode "{text}" (dcmqrscp treats it as read-only)',
            "expected R, RW or W (upper case)",
        )
        return Access.R

    def _quota(self, text: str) -> tuple[int, int]:
        # dcmqrcnf.cc parseQuota(): sscanf("%d , %s"), then quota() on the second word
        match = re.fullmatch(r"\s*([+-]?\d+)\s*,\s*(\S+)(.*)", text, re.DOTALL)
        fix = "write (maxStudies, maxBytesPerStudy), e.g. (100, 1024mb)"
        if match is None:
            raise self.error(f'quota "({text})" is not (maxStudies, maxBytesPerStudy)', fix)
        studies, size, rest = int(match[1]), match[2], match[3].strip()
        if studies == 0:
            raise self.error(
                "quota of 0 studies: dcmqrscp refuses the file", "use 1 or more studies"
            )
        if studies < 0:
            self.misread(
                f"quota of {studies} studies (dcmqrscp uses {DCMTK_UPPER_MAX_STUDIES})",
                "use 1 or more studies",
            )
        elif studies > DCMTK_UPPER_MAX_STUDIES:
            self.warn(
                f"quota of {studies} studies: dcmqrscp caps it at {DCMTK_UPPER_MAX_STUDIES}",
                "pacsbox uses the number as written",
            )
        if rest:
            self.misread(
                f'quota "({text})": dcmqrscp ignores "{rest}"',
                fix + " (no blank between number and unit)",
            )
        return studies, self._size(size)

    def _size(self, text: str) -> int:
        # dcmqrcnf.cc quota(): the last character must be b/B and the one before it picks the
        # factor (k, m, g; anything else is 1); the number is atoi(); no b means "no limit".
        number = _leading_int(text) or 0
        fix = f"use b, kb, mb or gb after a whole number, e.g. {abs(number) or 1024}mb"
        if not text.endswith(("b", "B")):
            self.misread(f'size "{text}" has no unit (dcmqrscp reads it as no limit)', fix)
            return -1
        if number == 0:
            raise self.error(f'size "{text}" is zero bytes (dcmqrscp refuses the file)', fix)
        if number < 0:
            self.misread(f'size "{text}" is negative (dcmqrscp reads it as no limit)', fix)
            return -1
        size = number * _FACTORS.get(text[-2:-1].lower(), 1)
        if not re.fullmatch(r"\d+(b|kb|mb|gb)", text, re.IGNORECASE):
            unit = re.sub(r"^[+-]?\d+", "", text)
            self.misread(
                f'size unit "{unit}" in "{text}" is unknown (dcmqrscp reads {size} bytes)', fix
            )
        if size > DCMTK_UPPER_MAX_BYTES_PER_STUDY:
            self.warn(
                f'size "{text}" is above dcmqrscp\'s ceiling of 1gb per study',
                "pacsbox uses the size as written; dcmqrscp would use 1gb",
            )
        return size


# -- writing ---------------------------------------------------------------------------


def _quote(value: str) -> str:
    """A value as dcmqrscp reads it back: quoted when it has gaps or could look special."""
    if any(c in _QUOTES for c in value) or "\n" in value:
        raise ValueError(
            f"{value!r} cannot be written in dcmqrscp.cfg (it holds a quote character or a line break)"
        )
    special = (
        not value or any(c in _GAPS for c in value) or value.startswith("#") or value in _TABLES
    )
    return f'"{value}"' if special else value


def _members(written: tuple[str, ...]) -> str:
    """A peer list: inline peers as they are, names quoted where needed."""
    return ", ".join(m if _INLINE.fullmatch(m) else _quote(m) for m in written)


def _size_text(size: int) -> str:
    if size < 0:
        raise ValueError(
            "a size of 'no limit' cannot be written; dcmqrscp needs a number and a unit"
        )
    for unit in ("gb", "mb", "kb"):
        if size % _UNITS[unit] == 0 and size >= _UNITS[unit]:
            return f"{size // _UNITS[unit]}{unit}"
    return f"{size}b"


def dump(config: DcmqrscpConfig) -> str:
    """The text of a dcmqrscp.cfg that ``parse`` reads back to an equal config."""
    out = ["# dcmqrscp configuration written by pacsbox"]
    for keyword, value in (
        ("NetworkTCPPort", config.port),
        ("MaxPDUSize", config.max_pdu),
        ("MaxAssociations", config.max_associations),
    ):
        if value is not None:
            out.append(f"{keyword} = {value}")
    for keyword, text in (("UserName", config.user_name), ("GroupName", config.group_name)):
        if text is not None:
            out.append(f"{keyword} = {_quote(text)}")
    if config.character_set is not None:
        out.append("SpecificCharacterSet = " + ", ".join(_quote(v) for v in config.character_set))
    tables = (
        ("HostTable", [f"{_quote(n)} = {_members(m)}" for n, m in config.host_table.items()]),
        ("VendorTable", [f"{_quote(v)} = {_members(m)}" for v, m in config.vendors.items()]),
        (
            "AETable",
            [
                f"{_quote(a.ae_title)} {_quote(a.path)} {a.access.value} "
                f"({a.max_studies}, {_size_text(a.max_bytes_per_study)}) "
                + ("ANY" if a.peers is None else _members(a.peer_names))
                for a in config.areas.values()
            ],
        ),
    )
    for table, rows in tables:
        if rows:
            out += ["", f"{table} BEGIN", *rows, f"{table} END"]
    return "\n".join(out) + "\n"
