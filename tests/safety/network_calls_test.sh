#!/usr/bin/env bash
# Self-test of the network-call checker of no_network.sh (network_calls.py, through the same
# strace command, see network_trace.sh): it must catch real network system calls, in the main
# thread and in other threads, and in every line form strace writes for them (whole, cut short
# `<unfinished ...>`, `<... NAME resumed>`), yet pass strace's own lines: a thread strace lost
# (`???( <detached ...>`, which once made the no-network test fail 1 run in 4 under load),
# process exits and signals, and local (AF_UNIX) sockets such as the C library's name-service
# lookups (a CI machine's Python made them at start-up and failed this test). A log it cannot read is an error, never a pass.
# Usage: tests/safety/network_calls_test.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/../editors/lib.sh"
. "$HERE/network_trace.sh"
command -v strace >/dev/null || apt_install strace
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# expect STATUS WHAT LOG [LINE...]: the checker exits STATUS on LOG and prints exactly LINE...
expect() {
  local want="$1" what="$2" log="$3" rc=0 out
  shift 3
  out="$(network_calls "$log" 2> "$WORK/checker.err")" || rc=$?
  [ "$rc" = "$want" ] || {
    cat "$log" "$WORK/checker.err" >&2
    die "$what: the checker exited $rc, expected $want; it printed: $out"
  }
  if [ "$#" -gt 0 ]; then
    [ "$out" = "$(printf '%s\n' "$@")" ] || die "$what: the checker printed '$out', expected '$*'"
  else
    [ -z "$out" ] || die "$what: the checker printed '$out', expected nothing"
  fi
  log "ok: $what"
}

# traced NAME CMD...: runs CMD under the no-network test's strace command; prints the log path.
traced() {
  local log="$WORK/$1.strace"
  shift
  "${STRACE_NETWORK[@]}" -o "$log" "$@" > /dev/null 2> "$WORK/err" || { cat "$WORK/err" >&2; die "$* failed"; }
  echo "$log"
}

# (a) Real programs under the real strace command.
log_file="$(traced socket python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()')"
grep -q 'socket(AF_INET' "$log_file" || die "strace did not record the socket: $(cat "$log_file")"
expect 1 "a program opening a socket fails" "$log_file" "$(grep 'socket(AF_INET' "$log_file")"

log_file="$(traced thread python3 -c '
import socket, threading
t = threading.Thread(target=lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close())
t.start(); t.join()')"
expect 1 "a socket opened by another thread fails" "$log_file" "$(grep 'socket(AF_INET' "$log_file")"

log_file="$(traced quiet python3 -c '
import threading
t = threading.Thread(target=lambda: open("/dev/null").close())
t.start(); t.join()')"
expect 0 "a threaded program with no network call passes" "$log_file"

log_file="$(traced local python3 -c '
import socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try: s.connect("/nonexistent/locus-test.sock")
except OSError: pass
s.close()')"
grep -q 'AF_UNIX' "$log_file" || die "strace did not record the local socket: $(cat "$log_file")"
expect 0 "a local (AF_UNIX) socket is not network" "$log_file"

# (b) strace's own lines only: a lost thread, exits, signals; sendfile (not counted, see
# network_calls.py); a blank line.
cat > "$WORK/noise.strace" <<'LOG'
12345 ???( <detached ...>
12346 ???( <detached ...>
12345 +++ exited with 0 +++
12347 +++ killed by SIGKILL +++
12344 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=12345, si_uid=0, si_status=0, si_utime=0, si_stime=0} ---
--- SIGPIPE {si_signo=SIGPIPE, si_code=SI_USER, si_pid=12344, si_uid=0} ---
12348 sendfile(4, 3, NULL, 4096)        = 4096
4345  socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK, 0) = 3
4345  connect(3, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT (No such file or directory)
4346  connect(4, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110 <unfinished ...>
4345  ???( <detached ...>
4346  <... connect resumed>)            = -1 ENOENT (No such file or directory)
[pid 4347] socketpair(AF_UNIX, SOCK_STREAM, 0, [5, 6]) = 0

LOG
expect 0 "strace's own lines (lost thread, exits, signals) and local sockets pass" "$WORK/noise.strace"

# (c) A call resumed after another thread's line, among noise: the resumed line counts, in
# every prefix form; so does a call cut short.
cat > "$WORK/resumed.strace" <<'LOG'
12345 ???( <detached ...>
12346 <... connect resumed>)           = -1 ENETUNREACH (Network is unreachable)
12346 +++ exited with 0 +++
LOG
expect 1 "a '<... connect resumed>' line fails" "$WORK/resumed.strace" \
  "12346 <... connect resumed>)           = -1 ENETUNREACH (Network is unreachable)"

cat > "$WORK/forms.strace" <<'LOG'
12346 connect(3, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("10.0.0.1")}, 16 <unfinished ...>
12345 ???( <detached ...>
[pid 12347] <... recvfrom resumed>"x", 1, 0, NULL, NULL) = 1
12348 12:00:00.123456 sendmsg(5, {msg_name=NULL}, 0) = 1
LOG
expect 1 "unfinished, [pid N] and timestamped calls fail" "$WORK/forms.strace" \
  '12346 connect(3, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("10.0.0.1")}, 16 <unfinished ...>' \
  '[pid 12347] <... recvfrom resumed>"x", 1, 0, NULL, NULL) = 1' \
  '12348 12:00:00.123456 sendmsg(5, {msg_name=NULL}, 0) = 1'

# A local call cut short does not excuse an internet call resumed in another thread, nor a later
# internet call of the same thread; data sent on any socket counts.
cat > "$WORK/mixed.strace" <<'LOG'
4346  connect(4, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110 <unfinished ...>
4347  <... connect resumed>)            = 0
4346  <... connect resumed>)            = -1 ENOENT (No such file or directory)
4346  connect(5, {sa_family=AF_INET6, sin6_port=htons(443)}, 28) = 0
4346  sendto(4, "x", 1, MSG_NOSIGNAL, NULL, 0) = 1
LOG
expect 1 "internet calls among local ones fail" "$WORK/mixed.strace" \
  "4347  <... connect resumed>)            = 0" \
  "4346  connect(5, {sa_family=AF_INET6, sin6_port=htons(443)}, 28) = 0" \
  '4346  sendto(4, "x", 1, MSG_NOSIGNAL, NULL, 0) = 1'

# (d) A log that is not there cannot pass.
expect 2 "a missing log is an error" "$WORK/absent.strace"

log "network-call checker self-test passed"
