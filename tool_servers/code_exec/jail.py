"""One sandboxed run inside fresh Linux namespaces, entered without privilege.

Run as `python -I -S -B jail.py key=value...` by `sandbox.run_python` (standard library only: it may run
under a different interpreter than the server; no `json`, whose import of `re` would cost every run
milliseconds). Three processes:

- the *keeper* (the server's child): drops to `nobody` if started as root, creates a user, mount,
  network, IPC, UTS and PID namespace, maps only its own uid/gid, forks the init, waits for it and exits
  as the code did (same code, same signal), so the server sees the code's own status;
- the *init* (pid 1 of the new PID namespace): builds a new root on a tmpfs (the system directories
  bound read-only, a minimal /dev, a fresh /proc, private tmpfs on /tmp, /var/tmp, /dev/shm and
  /run/lock, and a tmpfs at /sandbox holding main.py, read from `code_fd`: the only writable place
  besides those; nothing of a run is on the host's disk), pivots into it, detaches the old root, starts
  the code and reaps until the code exits;
- the *code*: `python -I -S -B main.py` with rlimits, no_new_privs and an empty environment; it has no
  capabilities (a non-zero uid loses them at exec).

Invariants: when the init exits the kernel kills every process left in its PID namespace, and the init
exits when the code exits or when the keeper dies (PR_SET_PDEATHSIG); the keeper dies with the server
thread that started it (PR_SET_PDEATHSIG) or when the server kills it at the timeout. So nothing the code
starts outlives the call. Setup failures are written to the status fd (never to the code's stderr) and
the keeper exits 125.
"""

from __future__ import annotations

import ctypes
import os
import resource
import select
import signal
import sys

NOBODY = 65534
SETUP_FAILED = 125
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV = 1, 2, 4
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 1, 4, 38
SYS_MOUNT_SETATTR = 442  # the same on every architecture (added in Linux 5.12)
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
WRITABLE_SCRATCH = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
DEVICES = ("null", "zero", "full", "random", "urandom")
SANDBOX_DIR = "/sandbox"
NEW_ROOT = "/tmp"  # where the new root is assembled: a directory every Linux has, and one we hide anyway

libc = ctypes.CDLL(None, use_errno=True)


class SetupError(Exception):
    pass


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]  # fmt: skip


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = [None if s is None else s.encode() for s in (source, target, fstype, data)]
    _check(libc.mount(enc[0], enc[1], enc[2], flags, enc[3]), f"mount {target}")


def _make_read_only(path: str, *, recursive: bool = True) -> None:
    """Read-only, nosuid, nodev for a mount and (recursive) all mounts below it; other flags kept."""
    attr = _MountAttr(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0, 0, 0)
    flags = AT_RECURSIVE if recursive else 0
    result = libc.syscall(SYS_MOUNT_SETATTR, -100, path.encode(), flags, ctypes.byref(attr), ctypes.sizeof(attr))
    _check(result, f"make {path} read-only")


def _set_death_signal() -> None:
    _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "set the parent-death signal")


def _enter_namespaces() -> None:
    """Own user namespace (mapping only our own ids, so no other uid exists inside) and the rest."""
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID
    _check(libc.unshare(flags), "create namespaces")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as fh:
            fh.write(text)


def _bind(source: str, target: str) -> None:
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    _mount(source, target, None, MS_BIND | MS_REC)


def _build_root(spec: dict) -> str:
    """The new root: a tmpfs holding only what the code may see (see the module docstring)."""
    root = NEW_ROOT
    _mount("none", "/", None, MS_REC | MS_PRIVATE)  # nothing we mount leaks back to the host
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")  # hides the host's, in here only
    for path in spec["read_only"]:
        inside = root + path
        if os.path.islink(path):  # /bin -> usr/bin on merged-/usr systems
            os.makedirs(os.path.dirname(inside), exist_ok=True)
            os.symlink(os.readlink(path), inside)
        elif os.path.exists(path):
            _bind(path, inside)
            _make_read_only(inside)
    for name in DEVICES:
        _bind(f"/dev/{name}", f"{root}/dev/{name}")
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):  # fmt: skip
        os.symlink(target, f"{root}/dev/{name}")
    for path in WRITABLE_SCRATCH:
        os.makedirs(root + path, exist_ok=True)
        _mount("tmpfs", root + path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={spec['scratch_bytes']},mode=1777")
    # The run's directory is a tmpfs too (bounded, never on the host's disk); the script is copied in.
    os.makedirs(root + SANDBOX_DIR)
    _mount("tmpfs", root + SANDBOX_DIR, "tmpfs", MS_NOSUID | MS_NODEV, f"size={spec['workdir_bytes']},mode=755")
    with os.fdopen(spec["code_fd"], "rb") as source, open(root + SANDBOX_DIR + "/main.py", "wb") as copy:
        copy.write(source.read())
    os.makedirs(root + "/proc")
    _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)  # pid 1 here: sees only this run
    return root


def _pivot(root: str) -> None:
    """Make `root` the file system's root and detach the host's, so no path (or chroot trick) reaches it."""
    number = SYS_PIVOT_ROOT.get(os.uname().machine)
    if number is None:
        raise SetupError(f"pivot_root: unknown syscall number on {os.uname().machine}")
    os.chdir(root)
    _check(libc.syscall(number, b".", b"."), "pivot_root")
    _check(libc.umount2(b".", MNT_DETACH), "detach the host's root")
    os.chdir("/")
    _make_read_only("/", recursive=False)


def _limits(spec: dict) -> None:
    cpu = spec["cpu_seconds"]
    for limit, value in ((resource.RLIMIT_CPU, (cpu, cpu + 1)), (resource.RLIMIT_AS, spec["memory_bytes"]),
                         (resource.RLIMIT_FSIZE, spec["file_bytes"]), (resource.RLIMIT_NOFILE, spec["open_files"]),
                         (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NPROC, spec["processes"])):  # fmt: skip
        resource.setrlimit(limit, value if isinstance(value, tuple) else (value, value))


def _exec_code(spec: dict) -> None:
    """In the code's process: limits, no new privileges, then the interpreter on main.py."""
    try:
        os.chdir(SANDBOX_DIR)
        _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "set no_new_privs")
        _limits(spec)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": SANDBOX_DIR, "LANG": "C.UTF-8"}
        os.execve(spec["python"], [spec["python"], "-I", "-S", "-B", "main.py"], env)
    except (OSError, SetupError) as exc:
        _report(spec, f"could not start the interpreter {spec['python']}: {exc}")
    os._exit(SETUP_FAILED)


def _init(spec: dict, keeper_alive: int, result_w: int) -> None:
    """Pid 1 of the run's namespace: build the root, start the code, reap, pass its status to the keeper."""
    _set_death_signal()
    if select.select([keeper_alive], [], [], 0)[0]:  # the keeper died before the death signal was armed
        os._exit(SETUP_FAILED)
    for sig in (signal.SIGINT, signal.SIGTERM):  # pid 1 ignores default-handled signals from its namespace
        signal.signal(sig, signal.SIG_DFL)
    _pivot(_build_root(spec))
    libc.sethostname(b"sandbox", 7)
    # We hold every capability in the run's user namespace: the code (same uid) must not ptrace us.
    _check(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "make the init undumpable")
    code = os.fork()
    if code == 0:
        _exec_code(spec)
    while True:
        pid, status = os.waitpid(-1, 0)  # reap orphans too; they re-parent to us
        if pid == code:
            os.write(result_w, str(status).encode())
            os._exit(0)  # the kernel now kills whatever the code left running


def _keep(spec: dict) -> int:
    """The server's child: namespaces, then wait for the init; returns the status to mirror."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # mirroring a SIGXCPU or SIGSEGV must not dump us
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        # A uid change makes us non-dumpable, which leaves /proc/self root-owned: the id maps could not be written.
        _check(libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "set dumpable")
    _set_death_signal()  # only now: a change of uid clears it
    if os.getppid() != spec["server_pid"]:  # the server died before the death signal was armed
        return SETUP_FAILED << 8
    _enter_namespaces()
    alive_r, alive_w = os.pipe()
    result_r, result_w = os.pipe()
    run = {"init": 0, "stopped": False}

    def stop(*_: object) -> None:
        # The server's way to end a run early: kill the init, then the keeper's wait returns only when every
        # process of the run is gone (a SIGKILLed keeper also ends the run, via the init's death signal).
        run["stopped"] = True
        if run["init"]:
            os.kill(run["init"], signal.SIGKILL)

    signal.signal(signal.SIGTERM, stop)
    init = run["init"] = os.fork()
    if init and run["stopped"]:  # stopped before the init existed
        os.kill(init, signal.SIGKILL)
    if init == 0:
        os.close(alive_w)
        os.close(result_r)
        try:
            _init(spec, alive_r, result_w)
        except (OSError, SetupError) as exc:
            _report(spec, f"sandbox setup failed: {exc}")
        os._exit(SETUP_FAILED)
    os.close(result_w)
    _, init_status = os.waitpid(init, 0)  # returns once every process in the namespace is gone
    if run["stopped"]:
        return signal.SIGKILL  # the wait status of a process killed by SIGKILL
    reported = os.read(result_r, 64)
    if reported:
        return int(reported)
    if os.WIFEXITED(init_status) and os.WEXITSTATUS(init_status) == SETUP_FAILED:
        return SETUP_FAILED << 8
    _report(spec, f"the sandbox's init ended unexpectedly (status {init_status})")
    return SETUP_FAILED << 8


def _report(spec: dict, message: str) -> None:
    os.write(spec["status_fd"], message.encode(errors="replace"))


def _mirror(status: int) -> None:
    """Exit as the code did: the same exit code, or death by the same signal."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):  # those two cannot be caught, so need no reset
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else SETUP_FAILED)


def _parse(args: list[str]) -> dict:
    """`key=value` arguments; digits are ints, `read_only` repeats (a path never is all digits)."""
    spec: dict = {"read_only": []}
    for arg in args:
        key, _, value = arg.partition("=")
        if key == "read_only":
            spec[key].append(value)
        else:
            spec[key] = int(value) if value.isdigit() else value
    return spec


def main() -> None:
    spec = _parse(sys.argv[1:])
    for fd in (spec["status_fd"], spec["code_fd"]):
        os.set_inheritable(fd, False)  # the code never gets them
    try:
        status = _keep(spec)
    except (OSError, SetupError) as exc:
        _report(spec, f"sandbox setup failed: {exc}")
        status = SETUP_FAILED << 8
    _mirror(status)


if __name__ == "__main__":
    main()
