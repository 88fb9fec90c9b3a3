#!/usr/bin/env python3
"""Finds the network system calls recorded in strace logs.

Usage: network_calls.py LOG...
Prints every line of the logs that records a network system call and exits 1 when there is
any; exits 0 when there is none, 2 when a log cannot be read.

The logs come from `strace -f -qq -e trace=%network -e signal=none -o LOG CMD`. Not every line
of such a log is a system call of the program: strace also writes its own lines, and those must
not count (under load strace once wrote `12345 ???( <detached ...>` for a thread it lost track
of, and a test that failed on any non-empty log failed on that). So each line's system call
name is parsed, and only names of the network family count:

    12345 connect(3, {...}, 16) = 0          a call                          -> connect
    12345 connect(3, {...} <unfinished ...>  a call another thread cut       -> connect
    12345 <... connect resumed>) = 0         the rest of that call           -> connect
    12345 ???( <detached ...>                a thread strace lost: no name   -> not a call
    12345 +++ exited with 0 +++              a process exit (strace's line)  -> not a call
    12345 --- SIGCHLD {...} ---              a signal (strace's line)        -> not a call

The PID column (`-f -o`), or `[pid N]` (`-f` to stderr), and a timestamp (`-t`, `-tt`, `-ttt`)
may precede the name.

The network family is what `-e trace=%network` selects on Linux (strace's syscall tables,
flag TN), on every architecture: `socketcall`, `send` and `recv` exist only on some, and
`recvmmsg_time64` is how strace names recvmmsg on 32-bit ones. One member is left out on
purpose: `sendfile`, which strace files under %network because its output may be a socket,
copies between any two file descriptors (Rust's `std::fs::copy` falls back to it). A socket
can only be had through `socket`, `socketpair`, `accept`, `accept4` or `recvmsg`, all counted,
so leaving `sendfile` out hides no network use.

Local sockets are not network: a `socket`, `socketpair`, `connect` or `bind` line naming the
`AF_UNIX` (or `AF_LOCAL`) family is IPC on this machine, such as the C library asking the name
service cache daemon (`connect(3, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110)`),
which a CI machine's Python did at start-up and which once failed the self-test. When such a
call is cut short (`<unfinished ...>`), its `<... NAME resumed>` line in the same thread is
local too. Every other call on any socket still counts, local or not: the checker errs towards
failing.
"""

import re
import sys

NETWORK_CALLS = frozenset(
    """
    socket socketpair connect accept accept4 bind listen getsockname getpeername
    sendto recvfrom sendmsg recvmsg sendmmsg recvmmsg recvmmsg_time64 shutdown
    setsockopt getsockopt socketcall send recv getpmsg putpmsg
    """.split()
)

# The optional PID (`12345 ` or `[pid 12345] `) and timestamp (`12:00:00`, `12:00:00.123456`,
# `1700000000.123456`), then the rest of the line.
_PREFIX = re.compile(r"^(?:\[pid\s+\d+\]\s+|\d+\s+)?(?:\d+(?::\d+:\d+)?(?:\.\d+)?\s+)?(?P<rest>.*)$")
_CALL = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\(")
_RESUMED = re.compile(r"^<\.\.\.\s+(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s+resumed>")


def syscall_name(line):
    """The system call a strace line records, or None for strace's own lines (process exits,
    signals, lost threads `???(`) and anything else that names no call."""
    rest = _PREFIX.match(line.rstrip("\n")).group("rest")
    match = _RESUMED.match(rest) or _CALL.match(rest)
    return match.group("name") if match else None


_LOCAL_FAMILY = re.compile(r"\bAF_(?:UNIX|LOCAL)\b")
_LOCAL_CALLS = frozenset(("socket", "socketpair", "connect", "bind"))
_THREAD = re.compile(r"^(?:\[pid\s+(?P<bracketed>\d+)\]|(?P<plain>\d+))\s")


def _thread(line):
    match = _THREAD.match(line)
    return (match.group("bracketed") or match.group("plain")) if match else None


def network_calls(lines):
    """The lines recording a network system call (local-socket calls excepted, see above)."""
    found = []
    local_unfinished = set()  # (thread, call) of local calls cut short, awaiting their resumption
    for raw in lines:
        line = raw.rstrip("\n")
        name = syscall_name(line)
        if name not in NETWORK_CALLS:
            continue
        rest = _PREFIX.match(line).group("rest")
        key = (_thread(line), name)
        if _RESUMED.match(rest):
            if key in local_unfinished:
                local_unfinished.discard(key)
                continue
        elif name in _LOCAL_CALLS and _LOCAL_FAMILY.search(rest):
            if rest.endswith("<unfinished ...>"):
                local_unfinished.add(key)
            continue
        found.append(line)
    return found


def main(argv):
    if len(argv) < 2:
        print(__doc__.splitlines()[2], file=sys.stderr)
        return 2
    found = []
    for path in argv[1:]:
        try:
            with open(path, encoding="utf-8", errors="replace") as log:
                found.extend(network_calls(log))
        except OSError as e:
            print(f"network_calls.py: cannot read {path}: {e}", file=sys.stderr)
            return 2
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
