"""pacsbox's own configuration file (TOML) for `pacsbox serve`: the model, its loader, and
the writer behind ``pacsbox serve --print-config``.

The file has these sections, every key optional (the defaults are serve's zero configuration)::

    [server]             ae_title, host, port, max_associations, max_pdu, acse_timeout,
                         dimse_timeout, idle_timeout, require_called_ae, calling_ae_titles,
                         pending_interval, workers
    [storage]            data (received files under data/files, the SQLite index in data/),
                         on_duplicate, max_dataset_size
    [database]           url (sqlite:///... or postgresql://...; default: SQLite in data/)
    [transfer_syntaxes]  accept: the acceptor's preference order, by name, option or UID
    [peers.<AE title>]   host, port: the AEs we know (C-MOVE destinations)
    [areas.<AE title>]   path, access, max_studies, max_bytes_per_study, peers,
                         on_max_studies: the storage area this called AE title selects
                         (dcmqrscp's AETable line; see AreaSettings)

Values are checked as the file is read: an unknown section or key, a value of the wrong type
or outside its range is an error naming the file, the line, the key and what it expects.
Relative paths in the file are relative to the file's folder (the same file works from any
working directory); the command line's are relative to the working directory. Command-line
flags override the file (``with_overrides``). ``docs/pacsbox.example.toml`` is an annotated
example that the tests load.

No pydicom here: ``pacsbox serve --print-config`` and a bad file answer at once.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .. import syntaxes as _syntaxes
from ..cli.syntax_options import SCP_OPTIONS  # DCMTK's +x flags: a table, no CLI machinery
from ..errors import PacsboxError
from ..syntaxes import ARCHIVE_PREFERENCE, ENCAPSULATED, SCP_PREFERENCES

MAX_AE_TITLE = 16  # PS3.5 6.2, VR AE
# A re-sent SOP Instance UID (the storage SCP's ON_DUPLICATE, without importing pydicom)
ON_DUPLICATE = ("replace", "keep", "refuse")
MIN_PDU, MAX_PDU = 4096, 131072  # what DCMTK's tools accept for -pdu
# A storage area's access (dcmqrscp.cfg's AETable: R, RW, W) and what a new study does when
# the area holds max_studies (services/quota.py's ON_MAX_STUDIES, without importing pydicom)
AREA_ACCESS = ("R", "RW", "W")
ON_MAX_STUDIES = ("delete-oldest", "refuse")
# max_bytes_per_study's units, binary as in dcmqrscp.cfg (1mb = 1024 * 1024 bytes)
SIZE_UNITS = {"b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30}


class NativeConfigError(PacsboxError, ValueError):
    """A pacsbox TOML configuration that cannot be used.

    ``str()`` is ``"{source}:{line}: [section] key: {what is wrong}; {what to write}"``
    (the line when it is known). ``source``, ``line`` and ``key`` stay available.
    """

    def __init__(self, source: str, line: int | None, key: str, problem: str, fix: str) -> None:
        self.source, self.line, self.key, self.problem, self.fix = source, line, key, problem, fix
        where = f"{source}:{line}" if line else source
        subject = f"{key}: " if key else ""
        super().__init__(f"{where}: {subject}{problem}; {fix}")


# --- the model --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """[server]: who we are on the network and how long we wait. Timeouts are seconds;
    None (0 in the file) is "never"."""

    ae_title: str = "PACSBOX"
    host: str = "0.0.0.0"
    port: int = 11112
    max_associations: int = 32
    max_pdu: int = MAX_PDU
    acse_timeout: float = 30
    dimse_timeout: float | None = None
    idle_timeout: float | None = 60
    require_called_ae: bool = False
    calling_ae_titles: tuple[str, ...] = ()  # accepted calling AE titles; empty: any
    pending_interval: float = 0.5  # C-MOVE/C-GET: seconds between pending responses (0: each)
    # processes accepting on the port (1: this process alone); max_associations is shared
    # out between them, ceil(max_associations / workers) each (pacsbox.cli.workers)
    workers: int = 1


@dataclass(frozen=True, slots=True)
class StorageSettings:
    """[storage]: the folder of the archive (files/ and, by default, index.sqlite), and what
    an instance whose SOP Instance UID is stored already does (see StorageSCP)."""

    data: Path = Path("pacs-data")
    on_duplicate: str = "replace"
    max_dataset_size: int | None = None  # bytes; a larger data set is refused (0xA700)


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    """[database]: the index; None is SQLite in the data folder."""

    url: str | None = None


@dataclass(frozen=True, slots=True)
class TransferSyntaxSettings:
    """[transfer_syntaxes]: ``accept`` as written (names, options, UIDs); ``uids`` is what it
    stands for, in preference order, each syntax once."""

    accept: tuple[str, ...] = ("archive",)

    @property
    def uids(self) -> tuple[str, ...]:
        return resolve_transfer_syntaxes(self.accept)


@dataclass(frozen=True, slots=True)
class Peer:
    """[peers.<AE title>]: an application entity we know and can connect to."""

    ae_title: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class AreaSettings:
    """[areas.<AE title>]: a storage area, the one an association calling ``ae_title`` uses
    for storing, querying and retrieving: dcmqrscp.cfg's AETable line
    ``ae_title path access (max_studies, max_bytes_per_study) peers`` (services/areas.py).

    None is "no limit" for the quotas and "any calling AE title" for ``peers``. ``line``:
    where the section starts in the file, for messages.
    """

    ae_title: str
    path: Path
    access: str = "RW"
    max_studies: int | None = None
    max_bytes_per_study: int | None = None
    peers: tuple[str, ...] | None = None
    on_max_studies: str = "delete-oldest"
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """Everything `pacsbox serve` runs with. ``source``: the file it was read from, if any."""

    server: ServerSettings = field(default_factory=ServerSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    transfer_syntaxes: TransferSyntaxSettings = field(default_factory=TransferSyntaxSettings)
    peers: Mapping[str, Peer] = field(default_factory=dict)
    source: Path | None = None
    areas: Mapping[str, AreaSettings] = field(default_factory=dict)  # called AE title -> area

    @property
    def database_url(self) -> str:
        """The index's URL: [database] url, else SQLite in the data folder."""
        return self.database.url or f"sqlite:///{self.storage.data / 'index.sqlite'}"

    def with_overrides(
        self, overrides: Mapping[str, Any], *, flags: Mapping[str, str] | None = None
    ) -> ServeConfig:
        """This configuration with ``{"section.key": value}`` replaced (command-line flags);
        None values are flags not given and change nothing. Values are checked as the
        file's are; an error names the flag (``flags``: "section.key" -> its spelling)."""
        changed: dict[str, dict[str, Any]] = {}
        for dotted, value in overrides.items():
            if value is None:
                continue
            section, key = dotted.split(".", 1)
            spec = _SECTIONS[section][1][key]
            try:
                checked = spec.check(value)
            except _Invalid as exc:
                flag = (flags or {}).get(dotted, dotted)
                raise NativeConfigError(
                    "command line", None, flag, exc.problem(value, spec),
                    f"give {flag} {spec.expected}",
                ) from None  # fmt: skip
            changed.setdefault(section, {})[key] = checked
        return replace(
            self,
            **{name: replace(getattr(self, name), **values) for name, values in changed.items()},
        )


# --- checking values: one table, one checker per key ----------------------------------------


class _Invalid(Exception):
    """A value does not fit; ``detail`` replaces the generic "expected ..." when given."""

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail

    def problem(self, value: Any, spec: _Key) -> str:
        return self.detail or f"expected {spec.expected}, not {_shown(value)}"


@dataclass(frozen=True, slots=True)
class _Key:
    check: Callable[[Any], Any]
    expected: str


def _shown(value: Any) -> str:
    """A TOML value as the user wrote it, with its TOML type."""
    kinds = {bool: "a boolean", int: "an integer", float: "a float", str: "a string",
             list: "an array", dict: "a table"}  # fmt: skip
    kind = kinds.get(type(value), type(value).__name__)
    text = json.dumps(value) if isinstance(value, str | bool) else repr(value)
    return f"{text} ({kind})" if not isinstance(value, list | dict) else kind


def _integer(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _Invalid
        return value

    return check


def _seconds(*, zero_is_never: bool) -> Callable[[Any], float | None]:
    def check(value: Any) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise _Invalid
        if value == 0:
            if not zero_is_never:
                raise _Invalid
            return None
        return value

    return check


def _byte_limit(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Invalid
    return value or None


def _interval(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _Invalid
    return value


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid
    return value


MAX_WORKERS = 64


def available_cpus() -> int:
    """The CPUs this process may run on (taskset and cgroup pinning included): what
    ``workers = "auto"`` stands for."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _workers(value: Any) -> int:
    if value == "auto":
        return min(available_cpus(), MAX_WORKERS)
    return _integer(1, MAX_WORKERS)(value)


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Invalid
    return value


def ae_title_problem(value: str) -> str | None:
    """Why ``value`` is not an AE title (PS3.5 6.2: up to 16 characters of the default
    repertoire without backslash or control characters, not all spaces), or None."""
    if not value.strip():
        return "an AE title cannot be empty or all spaces"
    if len(value) > MAX_AE_TITLE:
        return f"{value!r} has {len(value)} characters, an AE title at most {MAX_AE_TITLE}"
    if any(c == "\\" or not " " <= c <= "~" for c in value):
        return f"{value!r} has a backslash, a control character or one outside ASCII, which an AE title cannot hold"
    return None


def _ae_title(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid
    problem = ae_title_problem(value)
    if problem:
        raise _Invalid(problem)
    return value.strip()


def _ae_titles(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise _Invalid
    titles = []
    for item in value:
        if not isinstance(item, str):
            raise _Invalid(f"every entry must be a string (an AE title), not {_shown(item)}")
        titles.append(_ae_title(item))
    return tuple(titles)


def _path(value: Any) -> Path:
    return Path(_text(value)).expanduser()


def _choice(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise _Invalid
        return value

    return check


def _database_url(value: Any) -> str:
    url = _text(value)
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if "://" not in url or scheme not in ("sqlite", "postgresql", "postgres"):
        raise _Invalid(
            f"{url!r} is not an index URL: write sqlite:///relative/path.sqlite, "
            "sqlite:////absolute/path.sqlite or postgresql://user@host:port/database"
        )
    return url


def _syntax_names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise _Invalid
    for item in value:
        if not isinstance(item, str):
            raise _Invalid(f"every entry must be a string, not {_shown(item)}")
        if item not in _SYNTAX_NAMES and item not in _KNOWN_SYNTAX_UIDS:
            close = difflib.get_close_matches(item, list(_SYNTAX_NAMES), n=3)
            hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
            raise _Invalid(f"{item!r} is no transfer syntax pacsbox knows{hint}")
    return tuple(value)


# The names an entry of [transfer_syntaxes] accept may use: "archive" (serve's default: every
# syntax, uncompressed first, lossy last), DCMTK's +x options by flag or long name (what
# storescp with that option accepts), and the syntaxes by pydicom's names.
_SYNTAX_NAMES: dict[str, tuple[str, ...]] = {
    "archive": ARCHIVE_PREFERENCE,
    **{flag: SCP_PREFERENCES[key] for flag, key, _ in SCP_OPTIONS},
    **{key: SCP_PREFERENCES[key] for _, key, _ in SCP_OPTIONS},
    **{
        name: (uid,)
        for name, uid in vars(_syntaxes).items()
        if name[0].isupper() and isinstance(uid, str) and uid.startswith("1.2.840.10008.1.2")
    },
}
_KNOWN_SYNTAX_UIDS = frozenset(ARCHIVE_PREFERENCE) | ENCAPSULATED


def resolve_transfer_syntaxes(names: tuple[str, ...]) -> tuple[str, ...]:
    """The UIDs ``names`` stand for, in order, each once (names already checked)."""
    uids: dict[str, None] = {}
    for name in names:
        for uid in _SYNTAX_NAMES.get(name, (name,)):
            uids.setdefault(uid, None)
    return tuple(uids)


_SECTIONS: dict[str, tuple[type, dict[str, _Key]]] = {
    "server": (ServerSettings, {
        "ae_title": _Key(_ae_title, "an AE title: 1 to 16 ASCII characters, no backslash"),
        "host": _Key(_text, 'the address to listen on, e.g. "0.0.0.0" (all) or "127.0.0.1"'),
        "port": _Key(_integer(0, 65535), "an integer from 0 to 65535 (0: any free port)"),
        "max_associations": _Key(_integer(1, 10_000), "an integer from 1 to 10000"),
        "max_pdu": _Key(_integer(MIN_PDU, MAX_PDU), f"an integer from {MIN_PDU} to {MAX_PDU}"),
        "acse_timeout": _Key(_seconds(zero_is_never=False), "seconds, more than 0"),
        "dimse_timeout": _Key(_seconds(zero_is_never=True), "seconds (0: never)"),
        "idle_timeout": _Key(_seconds(zero_is_never=True), "seconds (0: never)"),
        "require_called_ae": _Key(_boolean, "true or false"),
        "calling_ae_titles": _Key(_ae_titles, 'an array of AE titles, e.g. ["CT1", "MR2"] ([]: any)'),
        "pending_interval": _Key(_interval, "seconds, 0 or more (0: after every sub-operation)"),
        "workers": _Key(_workers, f'an integer from 1 to {MAX_WORKERS}, or "auto" (one per CPU)'),
    }),
    "storage": (StorageSettings, {
        "data": _Key(_path, 'a folder, e.g. "/var/lib/pacsbox"'),
        "on_duplicate": _Key(_choice(*ON_DUPLICATE), '"replace", "keep" or "refuse"'),
        "max_dataset_size": _Key(_byte_limit, "a number of bytes, more than 0 (0: no limit)"),
    }),
    "database": (DatabaseSettings, {
        "url": _Key(_database_url, 'an index URL, e.g. "postgresql://pacsbox@dbhost/pacsbox"'),
    }),
    "transfer_syntaxes": (TransferSyntaxSettings, {
        "accept": _Key(_syntax_names, 'a non-empty array of syntaxes, e.g. ["+xs", "archive"]'),
    }),
}  # fmt: skip
_PEER_KEYS: dict[str, _Key] = {
    "host": _Key(_text, 'a host name or address, e.g. "ct1.example.org"'),
    "port": _Key(_integer(1, 65535), "an integer from 1 to 65535"),
}
_SECTION_NAMES = (*_SECTIONS, "peers", "areas")
_ALL_SECTIONS = (*(f"[{name}]" for name in _SECTIONS), "[peers.<AE title>]", "[areas.<AE title>]")


# --- loading ---------------------------------------------------------------------------------


def load(path: str | Path) -> ServeConfig:
    """Read and check the configuration file at ``path``.

    Raises NativeConfigError (for a file that cannot be read, too) saying what to change.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise NativeConfigError(
            str(path), None, "", f"cannot read the configuration file: {exc.strerror or exc}",
            "check the path given to --config",
        ) from None  # fmt: skip
    except UnicodeDecodeError as exc:
        raise NativeConfigError(
            str(path), None, "", f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})",
            "save it as UTF-8, as TOML requires",
        ) from None  # fmt: skip
    return replace(parse(text, source=str(path), base=path.parent), source=path)


def parse(text: str, *, source: str = "<string>", base: Path | None = None) -> ServeConfig:
    """Check TOML ``text``; relative paths in it are taken relative to ``base``."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = re.search(r"\(at line (\d+), column \d+\)$", message)
        line = int(found.group(1)) if found else None
        problem = message[: found.start()].strip() if found else message
        raise NativeConfigError(
            source, line, "", f"this is not valid TOML: {problem}",
            "see docs/pacsbox.example.toml for the syntax (strings in double quotes, "
            "[section] headers, key = value)",
        ) from None  # fmt: skip
    where = _Locator(text)

    def error(section: str, key: str | None, problem: str, fix: str) -> NativeConfigError:
        label = f"[{section}] {key}" if section and key else (key or f"[{section}]")
        return NativeConfigError(source, where.line(section, key), label, problem, fix)

    settings: dict[str, Any] = {}
    peers: dict[str, Peer] = {}
    areas: dict[str, AreaSettings] = {}
    for section, body in document.items():
        if section == "peers":
            peers = _peers(body, error)
            continue
        if section == "areas":
            areas = _areas(body, error, source, where, base)
            continue
        if section not in _SECTIONS:
            line = where.line(section, None) or where.line("", section)
            raise NativeConfigError(
                source, line, f"[{section}]", f"unknown section{_did_you_mean(section, _SECTION_NAMES)}",
                f"the sections are {', '.join(_ALL_SECTIONS)}",
            )  # fmt: skip
        if not isinstance(body, dict):
            raise error("", section, f"{section} must be a section ([{section}])",
                        f"write [{section}] on a line of its own, its keys below it")  # fmt: skip
        cls, keys = _SECTIONS[section]
        values = {}
        for key, value in body.items():
            spec = keys.get(key)
            if spec is None:
                raise error(section, key, f"unknown key{_did_you_mean(key, keys)}",
                            f"the keys of [{section}] are {', '.join(keys)}")  # fmt: skip
            try:
                values[key] = spec.check(value)
            except _Invalid as exc:
                default = _default_of(cls, key)
                raise error(section, key, exc.problem(value, spec),
                            f"write {spec.expected}, or remove the line for the default"
                            f" ({default})") from None  # fmt: skip
        settings[section] = cls(**values)
    storage = settings.get("storage")
    if storage is not None and base is not None and not storage.data.is_absolute():
        settings["storage"] = replace(storage, data=base / storage.data)
    return ServeConfig(**settings, peers=peers, areas=areas)


def _peers(body: Any, error) -> dict[str, Peer]:
    if not isinstance(body, dict):
        raise error("", "peers", "peers must be a set of sections, one per AE title",
                    'write [peers.STORESCP] then host = "..." and port = ...')  # fmt: skip
    peers = {}
    for ae_title, entry in body.items():
        section = f"peers.{_toml_key(ae_title)}"
        problem = ae_title_problem(ae_title)
        if problem:
            raise error(section, None, f"the section's name must be the peer's AE title: {problem}",
                        "rename the section to [peers.<the peer's AE title>]")  # fmt: skip
        if not isinstance(entry, dict):
            raise error("peers", _toml_key(ae_title), "a peer must be a section",
                        f'write [peers.{_toml_key(ae_title)}] then host = "..." and port = ...')  # fmt: skip
        values = {}
        for key, value in entry.items():
            spec = _PEER_KEYS.get(key)
            if spec is None:
                raise error(section, key, f"unknown key{_did_you_mean(key, _PEER_KEYS)}",
                            f"a peer has the keys {', '.join(_PEER_KEYS)}")  # fmt: skip
            try:
                values[key] = spec.check(value)
            except _Invalid as exc:
                raise error(
                    section, key, exc.problem(value, spec), f"write {spec.expected}"
                ) from None
        missing = [key for key in _PEER_KEYS if key not in values]
        if missing:
            raise error(section, None, f"the peer has no {' and no '.join(missing)}",
                        f"add {' and '.join(f'{k} = ...' for k in missing)} to [{section}]")  # fmt: skip
        peers[ae_title.strip()] = Peer(ae_title.strip(), **values)
    return peers


def _study_count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Invalid
    return value or None


def _study_size(value: Any) -> int | None:
    """Bytes as an integer, or a number and a unit as dcmqrscp.cfg writes it ("1024mb"; a
    blank between them and upper case are fine here); 0 is no limit."""
    if isinstance(value, str):
        found = re.fullmatch(r"\s*(\d+)\s*([kmg]?b)\s*", value, re.IGNORECASE)
        if found is None:
            raise _Invalid
        value = int(found.group(1)) * SIZE_UNITS[found.group(2).lower()]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Invalid
    return value or None


def _area_peers(value: Any) -> tuple[str, ...] | None:
    titles = _ae_titles(value)
    if titles == ("ANY",):
        return None
    if not titles:
        raise _Invalid("[] admits nobody: no association could use the area")
    if "ANY" in titles:
        raise _Invalid('"ANY" admits every calling AE title and cannot be one of several')
    return titles


_AREA_KEYS: dict[str, _Key] = {
    "path": _Key(_path, 'a folder, e.g. "research" (relative to this file\'s folder) or "/srv/research"'),
    "access": _Key(_choice(*AREA_ACCESS), '"R" (query and retrieve), "RW" or "W" (store only)'),
    "max_studies": _Key(_study_count, "a number of studies (0: no limit)"),
    "max_bytes_per_study": _Key(_study_size, 'bytes as an integer, or a string such as "1 GB" or "512mb" (b, kb, mb, gb; 1kb = 1024 bytes; 0: no limit)'),
    "peers": _Key(_area_peers, 'an array of calling AE titles, e.g. ["CT1", "MR2"], or ["ANY"]'),
    "on_max_studies": _Key(_choice(*ON_MAX_STUDIES), '"delete-oldest" or "refuse"'),
}  # fmt: skip


def _areas(
    body: Any, error, source: str, where: _Locator, base: Path | None
) -> dict[str, AreaSettings]:
    """[areas.<AE title>] sections: each area's settings, its path made absolute from
    ``base`` (the file's folder) as [storage] data is."""
    if not isinstance(body, dict):
        raise error("", "areas", "areas must be a set of sections, one per called AE title",
                    'write [areas.RESEARCH] then path = "..." and the other keys')  # fmt: skip
    areas: dict[str, AreaSettings] = {}
    for ae_title, entry in body.items():
        label = f"[areas.{_toml_key(ae_title)}]"

        def fail(key: str | None, problem: str, fix: str, ae_title=ae_title, label=label):
            line = where.line(f"areas.{ae_title}", key)
            subject = f"{label} {key}" if key else label
            return NativeConfigError(source, line, subject, problem, fix)

        problem = ae_title_problem(ae_title)
        if problem:
            raise fail(None, f"the section's name must be the called AE title of the area: {problem}",
                       "rename the section to [areas.<AE title>]")  # fmt: skip
        if not isinstance(entry, dict):
            raise fail(None, "a storage area must be a section",
                       f'write {label} then path = "..." on the next line')  # fmt: skip
        values: dict[str, Any] = {}
        for key, value in entry.items():
            spec = _AREA_KEYS.get(key)
            if spec is None:
                raise fail(key, f"unknown key{_did_you_mean(key, _AREA_KEYS)}",
                           f"a storage area has the keys {', '.join(_AREA_KEYS)}")  # fmt: skip
            try:
                values[key] = spec.check(value)
            except _Invalid as exc:
                default = _AREA_DEFAULTS.get(key)
                fix = f"write {spec.expected}" + (
                    f", or remove the line for the default ({default})" if default else ""
                )
                raise fail(key, exc.problem(value, spec), fix) from None
        if "path" not in values:
            raise fail(None, "the storage area has no path",
                       f'add path = "<folder>" to {label} (relative to this file\'s folder)')  # fmt: skip
        title = ae_title.strip()
        if title in areas:
            raise fail(None, f"a second section for the AE title {title!r}",
                       "give each storage area its own AE title")  # fmt: skip
        if base is not None and not values["path"].is_absolute():
            values["path"] = base / values["path"]
        areas[title] = AreaSettings(title, **values, line=where.line(f"areas.{ae_title}", None))
    return areas


_AREA_DEFAULTS = {
    "access": '"RW"',
    "max_studies": "no limit",
    "max_bytes_per_study": "no limit",
    "peers": "any calling AE title",
    "on_max_studies": '"delete-oldest"',
}


def _did_you_mean(word: str, known) -> str:
    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _default_of(cls: type, key: str) -> str:
    value = next(f.default for f in fields(cls) if f.name == key)
    return "never" if value is None else _toml_value(value)


class _Locator:
    """Best-effort line numbers for sections and keys (tomllib gives them only for syntax
    errors): the line of ``key =`` under the ``[section]`` header, or of ``section.key =``
    where dotted keys are used, or of the header itself."""

    _HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def line(self, section: str, key: str | None) -> int | None:
        target = f"{section}.{key}" if section and key else (key or section)
        current, header_line = "", None
        for number, raw in enumerate(self.lines, 1):
            header = self._HEADER.match(raw)
            if header:
                current = _normalise(header.group(1))
                if header_line is None and _within(current, section):
                    if key is None:
                        return number
                    header_line = number
                continue
            if "=" not in raw:
                continue
            name = _normalise(raw.split("=", 1)[0])
            full = f"{current}.{name}" if current else name
            if full == target or (key is None and _within(full, section)):
                return number
        return header_line


def _within(dotted: str, section: str) -> bool:
    return dotted == section or dotted.startswith(section + ".")


def _normalise(dotted: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in dotted.split("."))


# --- writing: the effective configuration as TOML --------------------------------------------


def dumps(config: ServeConfig, *, comment: str | None = None) -> str:
    """``config`` as a TOML document that ``parse`` reads back to the same configuration
    (the data folder absolute; a password in the database URL replaced by ***)."""
    out = [f"# {line}" for line in (comment or "").splitlines()]
    for name in _SECTIONS:
        settings = getattr(config, name)
        out += ["", f"[{name}]"]
        for f in fields(settings):
            value = getattr(settings, f.name)
            if name == "storage" and f.name == "data":
                value = Path(value).resolve()
            if name == "database" and f.name == "url":
                if value is None:  # keep it unset: it follows [storage] data
                    sqlite = Path(config.storage.data).resolve() / "index.sqlite"
                    out.append(f"# url not set: the index is sqlite:///{sqlite}")
                    continue
                value = _hide_password(value)
            if value is None:  # a timeout: never
                out.append(f"{f.name} = 0  # never")
            else:
                out.append(f"{f.name} = {_toml_value(value)}")
    for peer in config.peers.values():
        out += ["", f"[peers.{_toml_key(peer.ae_title)}]", f"host = {_toml_value(peer.host)}",
                f"port = {peer.port}"]  # fmt: skip
    for area in config.areas.values():
        out += _area_lines(area)
    return "\n".join(out).lstrip("\n") + "\n"


def _area_lines(area: AreaSettings) -> list[str]:
    """An [areas.<AE title>] section, every key written (limits of 0: none)."""
    size = area.max_bytes_per_study
    return [
        "",
        f"[areas.{_toml_key(area.ae_title)}]",
        f"path = {_toml_value(Path(area.path).resolve())}",
        f"access = {_toml_value(area.access)}",
        f"max_studies = {area.max_studies or 0}" + ("" if area.max_studies else "  # no limit"),
        f"max_bytes_per_study = {_toml_value(size_text(size)) if size else '0  # no limit'}",
        f"peers = {_toml_value(area.peers if area.peers is not None else ('ANY',))}",
        f"on_max_studies = {_toml_value(area.on_max_studies)}",
    ]


def size_text(size: int) -> str:
    """A byte count in the largest unit that holds it exactly ("1gb", "1536kb", "100b")."""
    unit = next(u for u in ("gb", "mb", "kb", "b") if size % SIZE_UNITS[u] == 0)
    return f"{size // SIZE_UNITS[unit]}{unit}"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # JSON's string escapes are TOML's basic-string escapes


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _hide_password(url: str) -> str:
    return re.sub(r"(://[^/:@]*:)[^/@]*@", r"\1***@", url)
