"""The servers run on uvloop's event loop, the client tools on asyncio's; PACSBOX_UVLOOP=0/1
chooses for all; without uvloop everything runs on asyncio's."""

from __future__ import annotations

import asyncio
import sys

import pytest
import uvloop

from pacsbox.cli.common import event_loop_factory, run_coroutine


async def loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def ran_on(server: bool) -> str:
    seen = []

    async def record() -> int:
        seen.append(await loop_module())
        return 0

    assert run_coroutine(record(), server=server) == 0
    return seen[0]


@pytest.fixture(autouse=True)
def no_choice(monkeypatch):
    monkeypatch.delenv("PACSBOX_UVLOOP", raising=False)


def test_a_server_runs_on_uvloop_and_a_client_tool_on_asyncio():
    assert event_loop_factory(server=True) is uvloop.new_event_loop
    assert event_loop_factory(server=False) is None
    assert ran_on(server=True).startswith("uvloop")
    assert ran_on(server=False).startswith("asyncio")


@pytest.mark.parametrize(("choice", "server", "loop"), [
    ("0", True, "asyncio"), ("0", False, "asyncio"), ("1", True, "uvloop"), ("1", False, "uvloop"),
])  # fmt: skip
def test_pacsbox_uvloop_chooses_for_every_tool(monkeypatch, choice, server, loop):
    monkeypatch.setenv("PACSBOX_UVLOOP", choice)
    assert ran_on(server).startswith(loop)


def test_without_uvloop_a_server_runs_on_asyncio(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop raises ImportError
    assert event_loop_factory(server=True) is None
    assert ran_on(server=True).startswith("asyncio")
