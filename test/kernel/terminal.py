"""Runs a command on a pseudo-terminal, as a user's terminal would, for
start.test.ts: the command's output is copied to stdout, and a line
"ctrl-c" on stdin types Ctrl-C (the terminal then sends SIGINT to the
command's foreground process group). Exits with the command's status.

usage: terminal.py COMMAND [ARG...]
"""
import os
import pty
import select
import sys

pid, master = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])

out = sys.stdout.buffer
while True:
    ready, _, _ = select.select([master, sys.stdin], [], [])
    if sys.stdin in ready:
        line = sys.stdin.readline()
        if line.strip() == "ctrl-c":
            os.write(master, b"\x03")
    if master in ready:
        try:
            data = os.read(master, 65536)
        except OSError:  # the terminal closed: the command has ended
            break
        if not data:
            break
        out.write(data)
        out.flush()
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
