"""The `pacsbox` command imports asyncio without ssl (start-up time); ssl stays importable."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
from pacsbox.cli import main
main._import_asyncio_without_ssl()
import asyncio, asyncio.sslproto, asyncio.base_events
assert "ssl" not in sys.modules, "asyncio loaded ssl"
assert asyncio.sslproto.ssl is None
import ssl  # whoever needs it later still gets it
assert ssl.SSLContext and sys.modules["ssl"] is ssl
async def echo():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
    transport.close()
    server.close()
asyncio.run(echo())  # plain TCP transports work as ever
print("ok")
"""


def test_asyncio_without_ssl_still_does_plain_tcp_and_ssl_stays_importable():
    done = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_command_starts_without_ssl():
    code = (
        "import sys; from pacsbox.cli.main import main\n"
        "try:\n    main(['echoscu', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('ssl' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip().splitlines()[-1] == "False", done.stdout + done.stderr


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_one_shot_tool_exits_without_teardown_with_its_status_and_output():
    """run(): a client tool that has finished leaves by os._exit (no interpreter teardown),
    its exit status and everything it printed and logged intact; atexit handlers do not run."""
    port = _closed_port()
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('TEARDOWN', flush=True))\n"
        f"sys.argv = ['pacsbox', 'echoscu', '-v', '127.0.0.1', '{port}']\n"
        "print('before', flush=False)\n"
        "from pacsbox.cli.main import run\n"
        "run()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "before" in done.stdout and "TEARDOWN" not in done.stdout
    assert str(port) in done.stderr  # the failure, worded, reached the pipe


def test_a_server_tool_exits_the_usual_way():
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('TEARDOWN', flush=True))\n"
        "sys.argv = ['pacsbox', 'storescp', '--no-such-option']\n"
        "from pacsbox.cli.main import run\n"
        "run()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2 and "TEARDOWN" in done.stdout, done.stdout + done.stderr
