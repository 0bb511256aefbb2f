"""A child that leaves its parent's session and double-forks, the way a
daemonizing helper escapes a supervisor that tracks a PID or a process
group. The grandchild sleeps; the intermediate exits."""
import os
import sys
import time

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        print(f"escaped as {os.getpid()}", flush=True)
        time.sleep(600)
    os._exit(0)
os.wait()
time.sleep(600)
