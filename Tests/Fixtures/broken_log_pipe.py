"""Runs a worker with its output on a pipe, reads the first line, closes the pipe (as when the
reader of a worker's logs goes away), sends SIGTERM and prints `exit <code>` (negative: the signal
that killed it). Arguments: the worker executable; the environment is passed on.
"""
import signal
import subprocess
import sys
import time

worker = subprocess.Popen([sys.argv[1]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
worker.stdout.readline()
worker.stdout.close()
time.sleep(1.0)
worker.send_signal(signal.SIGTERM)
try:
    code = worker.wait(timeout=40)
except subprocess.TimeoutExpired:
    worker.kill()
    code = "timeout"
print(f"exit {code}", flush=True)
