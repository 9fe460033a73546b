"""Configuration files: DCMTK's dcmqrscp.cfg (read as dcmqrscp reads it, and written back), and
pacsbox's own TOML file for `pacsbox serve` (``pacsbox.config.native``)."""

from pacsbox.config.dcmqrscp import (
    Access,
    ConfigError,
    DcmqrscpConfig,
    Host,
    StorageArea,
    dump,
    load,
    parse,
)

__all__ = [
    "Access",
    "ConfigError",
    "DcmqrscpConfig",
    "Host",
    "StorageArea",
    "dump",
    "load",
    "parse",
]
