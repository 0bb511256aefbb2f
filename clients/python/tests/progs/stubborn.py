"""Ignores SIGTERM (a server stuck in a long request): only the kill after
the grace period ends it."""
import signal
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ignoring SIGTERM", flush=True)
time.sleep(600)
