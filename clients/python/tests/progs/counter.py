"""Prints "line 1" … "line N", the first FIRST at once and the rest every
EVERY seconds, then stays quiet (a service with output to follow)."""
import sys
import time

n, first, every = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
for i in range(1, n + 1):
    print(f"line {i}", flush=True)
    if i >= first:
        time.sleep(every)
time.sleep(600)
