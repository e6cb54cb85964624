"""Hostile code against the sandbox, with the runner as an unprivileged user (see `hostile.py`).

Each test checks one promise. Where this machine's sandbox does not claim a promise (no user
namespaces, macOS), the test checks that the runner says so, and is skipped.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.procfs import processes_with
from tests.tool_servers.hostile import (
    RUNNER_UID,
    SERVER_SECRET,
    Runner,
    kill,
    wait_until,
)

pytestmark = pytest.mark.slow
HOST_SECRET = "sk-host-secret-of-the-test-0815"
ENV, NETWORK, PROCESSES, FILES, CLEANUP = (
    "no environment variable",
    "no network",
    "no other process",
    "the host's files",
    "every process the code",
)


@pytest.fixture(scope="module")
def runner() -> Iterator[Runner]:
    made = Runner()
    yield made
    made.close()


@pytest.fixture
def host_dir() -> Iterator[Path]:
    """A host directory the runner's user owns (like its data dir or $HOME), traversable by everyone."""
    path = Path(tempfile.mkdtemp(prefix="code-exec-host-"))
    path.chmod(0o755)
    os.chown(path, RUNNER_UID, RUNNER_UID)
    yield path
    for child in path.iterdir():
        child.unlink()
    path.rmdir()


def claimed(answer: dict, promise: str) -> bool:
    if any(text.startswith(promise) for text in answer["kept"]):
        return True
    assert any(text.startswith(promise) for text in answer["not_kept"]), answer
    pytest.skip(f"not claimed here ({answer['mechanism']} sandbox): {promise}…")


def test_no_environment_variable_of_the_host_or_the_server_is_visible(runner: Runner, monkeypatch) -> None:
    monkeypatch.setenv("CODE_EXEC_HOST_SECRET", HOST_SECRET)  # the test process stands for the host
    code = """import os
print(dict(os.environ))
for pid in os.listdir('/proc'):
    try:
        print(pid, open(f'/proc/{pid}/environ', 'rb').read())
    except OSError as exc:
        print(pid, 'unreadable', exc.errno)
"""
    answer = runner.run(code)
    assert answer["result"]["exit_code"] == 0, answer["result"]["stderr"]
    claimed(answer, ENV)
    seen = answer["result"]["stdout"]
    assert "/proc" not in answer["result"]["stderr"] and "1 " in seen  # it did look at processes
    assert HOST_SECRET not in seen and SERVER_SECRET not in seen and "OPENAI_API_KEY" not in seen


def test_no_connection_reaches_a_loopback_server(runner: Runner, host_dir: Path) -> None:
    tcp = socket.create_server(("127.0.0.1", 0))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    unix_path = str(host_dir / "server.sock")
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(unix_path)
    unix.listen()
    os.chmod(unix_path, 0o777)
    code = f"""import socket
for name, family, kind, address in (('tcp', socket.AF_INET, socket.SOCK_STREAM, ('127.0.0.1', {tcp.getsockname()[1]})),
                                    ('udp', socket.AF_INET, socket.SOCK_DGRAM, ('127.0.0.1', {udp.getsockname()[1]})),
                                    ('unix', socket.AF_UNIX, socket.SOCK_STREAM, {unix_path!r})):
    try:
        s = socket.socket(family, kind)
        s.settimeout(3)
        s.connect(address)
        s.send(b'hello')
        print(name, 'connected')
    except OSError as exc:
        print(name, 'refused', exc)
"""
    try:
        answer = runner.run(code)
        claimed(answer, NETWORK)
        assert "connected" not in answer["result"]["stdout"], answer["result"]["stdout"]
        for server in (tcp, udp, unix):
            server.setblocking(False)
        with pytest.raises(BlockingIOError):
            tcp.accept()
        with pytest.raises(BlockingIOError):
            udp.recvfrom(64)
        with pytest.raises(BlockingIOError):
            unix.accept()
    finally:
        for server in (tcp, udp, unix):
            server.close()
        os.unlink(unix_path)


def test_private_files_outside_the_run_directory_are_unreadable(runner: Runner, host_dir: Path) -> None:
    secrets = []
    for mode in (0o600, 0o640, 0o400):
        path = host_dir / f"private-{mode:o}-{uuid.uuid4().hex}"
        path.write_text(f"private content {uuid.uuid4().hex}")
        path.chmod(mode)
        os.chown(path, RUNNER_UID, RUNNER_UID)  # owned by the runner's own user: the real threat
        secrets.append(path)
    code = "\n".join(f"try:\n    print(open({str(p)!r}).read())\nexcept OSError as exc:\n    print('no', exc)"
                     for p in secrets)  # fmt: skip
    answer = runner.run(code)
    claimed(answer, FILES)
    for path in secrets:
        assert path.read_text() not in answer["result"]["stdout"]


def test_nothing_outside_the_run_directory_is_writable(runner: Runner, host_dir: Path) -> None:
    targets = [f"{d}/escape-{uuid.uuid4().hex}" for d in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", str(host_dir))]
    code = f"""import os
print(open('here.txt', 'w').write('ok'))
for path in {targets!r}:
    try:
        open(path, 'w').write('x')
        print('wrote', path)
    except OSError as exc:
        print('refused', path, exc)
"""
    answer = runner.run(code)
    claimed(answer, FILES)
    assert answer["result"]["stdout"].startswith("2\n")  # its own directory is writable
    assert [t for t in targets if os.path.lexists(t)] == []


@pytest.mark.parametrize("how", ["setsid", "double_fork", "nohup"])
def test_no_process_outlives_the_call(runner: Runner, how: str) -> None:
    marker = f"outlive-{how}-{uuid.uuid4().hex}"
    sleeper = f"[sys.executable, '-c', 'import time; time.sleep(600)', {marker!r}]"
    start = {
        "setsid": f"subprocess.Popen({sleeper}, start_new_session=True, stdout=subprocess.DEVNULL, "
        "stderr=subprocess.DEVNULL)",
        "double_fork": f"""pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, {sleeper})
    os._exit(0)
os.waitpid(pid, 0)""",
        "nohup": f"subprocess.Popen(['nohup', *{sleeper}], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)",
    }[how]
    code = f"""import os, subprocess, sys, time
{start}
deadline = time.monotonic() + 5
while time.monotonic() < deadline and not any({marker!r}.encode() in open(f'/proc/{{p}}/cmdline', 'rb').read()
                                               for p in os.listdir('/proc') if p.isdigit()):
    time.sleep(0.02)
print('started')
"""
    answer = runner.run(code)
    assert answer["result"]["stdout"] == "started\n", answer["result"]["stderr"]
    left = processes_with(marker)
    for pid in left:
        kill(pid)
    claimed(answer, CLEANUP)
    assert left == []


def test_a_later_run_sees_neither_the_files_nor_the_processes_of_another(runner: Runner) -> None:
    marker = f"first-run-{uuid.uuid4().hex}"
    first = runner.start(f"""import subprocess, sys, time
open('first-run-file', 'w').write({marker!r})
open('/tmp/first-run-file', 'w').write({marker!r})
subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', {marker!r}])
time.sleep(60)
""", timeout_s=60)  # fmt: skip
    try:
        assert wait_until(lambda: bool(processes_with(marker))), "the first run never started"
        second = runner.run("""import glob, os
for pid in os.listdir('/proc'):
    if pid.isdigit():
        try:
            print(pid, open(f'/proc/{pid}/cmdline', 'rb').read())
        except OSError:
            pass
for pattern in ('/tmp/*', '/tmp/*/*', '/tmp/*/*/*', '../*', '/var/lib/model-router/code-exec/*/*'):
    for path in glob.glob(pattern):
        try:
            print(path, open(path, 'rb').read(200))
        except OSError:
            print(path)
""")  # fmt: skip
        assert second["result"]["exit_code"] == 0, second["result"]["stderr"]
        claimed(second, PROCESSES)
        claimed(second, FILES)
        assert marker not in second["result"]["stdout"] and "first-run-file" not in second["result"]["stdout"]
    finally:
        first.kill()
        first.communicate()
        wait_until(lambda: not processes_with(marker))
        for pid in processes_with(marker):
            kill(pid)


def test_killing_the_runner_mid_call_leaves_no_process(runner: Runner) -> None:
    claimed(runner.run("pass"), CLEANUP)
    marker = f"orphan-{uuid.uuid4().hex}"
    proc = runner.start(f"""import subprocess, sys, time
subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', {marker!r}], start_new_session=True)
time.sleep(60)
""", timeout_s=60)  # fmt: skip
    try:
        assert wait_until(lambda: bool(processes_with(marker))), "the run never started its process"
        proc.kill()  # the code_exec server dies mid-call
        proc.communicate()
        gone = wait_until(lambda: not processes_with(marker))
    finally:
        for pid in processes_with(marker):
            kill(pid)
    assert gone, "a process of the run outlived the code_exec server"


def test_the_code_runs_as_the_unprivileged_runner(runner: Runner) -> None:
    answer = runner.run("import os\nprint(os.getuid(), os.geteuid())")
    assert answer["result"]["stdout"] == f"{RUNNER_UID} {RUNNER_UID}\n" and RUNNER_UID != 0


def test_killing_the_code_exec_server_process_mid_call_leaves_no_process() -> None:
    """The real stdio server (as the test's own user), SIGKILLed while a run's detached process lives."""
    marker = f"server-orphan-{uuid.uuid4().hex}"
    code = (f"import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', "
            f"{marker!r}], start_new_session=True)\ntime.sleep(60)\n")  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "tool_servers.code_exec"], env={"PATH": os.environ["PATH"]},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert server.stdin and server.stdout
    hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18",
             "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}}  # fmt: skip
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "execute_python", "arguments": {"code": code, "timeout_s": 60}}}  # fmt: skip
    try:
        server.stdin.write((json.dumps(hello) + "\n").encode())
        server.stdin.flush()
        assert json.loads(server.stdout.readline())["id"] == 1
        server.stdin.write(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}\n')
        server.stdin.write((json.dumps(call) + "\n").encode())
        server.stdin.flush()
        assert wait_until(lambda: bool(processes_with(marker))), "the run never started its process"
        server.kill()
        server.wait()
        gone = wait_until(lambda: not processes_with(marker))
    finally:
        server.kill()
        for pid in processes_with(marker):
            kill(pid)
    assert gone, "a process of the run outlived the code_exec server"
