# How the safety tests trace a program for network system calls and judge the log; shared by
# no_network.sh and network_calls_test.sh, so the self-test checks the very command and checker
# the proof uses. Source it (after tests/editors/lib.sh for `log` and `die`).

SAFETY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# `"${STRACE_NETWORK[@]}" -o LOG CMD...` records every network system call of CMD, its threads
# and children in LOG; -qq drops strace's attach and exit messages, signal=none its signal lines.
STRACE_NETWORK=(strace -f -qq -e trace=%network -e signal=none)

# network_calls LOG...: prints the lines of the logs that record a network system call (strace's
# own lines, such as a lost thread's `???( <detached ...>`, are not calls); status 1 when there
# are any, 0 when there are none, 2 when a log cannot be read.
network_calls() { python3 "$SAFETY_DIR/network_calls.py" "$@"; }

# assert_no_network_calls LOG WHAT: logs success, or dies showing the calls WHAT made.
assert_no_network_calls() {
  local calls rc=0
  calls="$(network_calls "$1")" || rc=$?
  case "$rc" in
    0) log "no network system call: $2" ;;
    1) printf '%s\n' "$calls" | head -n 20 >&2; die "network system calls by: $2" ;;
    *) die "could not check the strace log $1 of: $2" ;;
  esac
}
