"""pacsbox: a DICOM networking toolkit and lightweight PACS.

The Python API (loaded on first use, so ``import pacsbox`` stays light):

    pacsbox.connect(host, port, called_ae=..., calling_ae=...)  -> Client (sync)
    pacsbox.AsyncClient(host, port, ...)                         async, the same methods
    pacsbox.StorageReceiver(directory, port=..., on_instance=...)
    pacsbox.CancelToken()
"""

from __future__ import annotations

import importlib

# public name -> module that defines it
_API: dict[str, str] = {
    "connect": "pacsbox.sync",
    "Client": "pacsbox.sync",
    "AsyncClient": "pacsbox.client",
    "CancelToken": "pacsbox.retrieval",
    "Retrieved": "pacsbox.retrieval",
    "IncompleteRetrieveError": "pacsbox.retrieval",
    "StorageReceiver": "pacsbox.receiver",
    "ReceivedInstance": "pacsbox.receiver",
    "PacsboxError": "pacsbox.errors",
    "NetworkError": "pacsbox.net.association",
    "AssociationRejectedError": "pacsbox.ul.diagnosis",
    "AssociationAbortedError": "pacsbox.ul.diagnosis",
    "FindError": "pacsbox.services.find_scu",
    "RetrieveProgress": "pacsbox.services.retrieve_scu",
    "RetrieveResult": "pacsbox.services.retrieve_scu",
    "RetrieveError": "pacsbox.services.retrieve_scu",
    "MoveDestinationUnknownError": "pacsbox.services.retrieve_scu",
    "RetrieveOutOfResourcesError": "pacsbox.services.retrieve_scu",
    "IdentifierError": "pacsbox.services.retrieve_scu",
    "SubOperationsFailedError": "pacsbox.services.retrieve_scu",
    "RetrieveRefusedError": "pacsbox.services.retrieve_scu",
    "Timeouts": "pacsbox.net.association",
}

__all__ = sorted(_API)


def __getattr__(name: str):
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'pacsbox' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
