#!/usr/bin/python3
"""A stand-in sync command for the launcher tests: its first argument picks a behaviour."""
import json
import os
import signal
import sys
import time


def emit(**fields):
    print(json.dumps(fields), flush=True)


def announce():
    print("argv: " + json.dumps(sys.argv[1:]), flush=True)
    keys = ["CRM_DASHBOARD_SYNC_ID", "CRM_SOURCE", "SYNC_TYPE", "PGHOST", "PGPORT",
            "PGDATABASE", "PGUSER", "PATH", "LANG", "EXTRA", "HOME"]
    print("env: " + json.dumps({k: os.environ.get(k) for k in keys}), flush=True)
    print("cwd: " + os.getcwd(), flush=True)
    print("fds: " + json.dumps(sorted(int(f) for f in os.listdir("/proc/self/fd"))), flush=True)


def main():
    mode = sys.argv[1]
    announce()
    if mode == "success":
        for i in range(1, 6):
            emit(event="progress", processed=i * 100, created=i * 60, updated=i * 40, failed=0, total=500)
            time.sleep(0.02)
        emit(event="summary", processed=500, created=300, updated=200, failed=0, total=500)
    elif mode == "partial":
        emit(event="progress", processed=10, created=5, updated=2, failed=3, total=10)
        for r in ("r1", "r2", "r3"):
            emit(event="error", message=f"record {r} rejected: missing email", record=r)
    elif mode == "fail":
        print("connecting to the CRM", file=sys.stderr, flush=True)
        print("authentication failed: token expired", file=sys.stderr, flush=True)
        sys.exit(3)
    elif mode == "malformed":
        print('{"event": "progress", "processed": ', flush=True)
        print("{not json at all", flush=True)
        emit(event="progress", processed=7, created=7, updated=0, failed=0)
    elif mode == "sleep":
        emit(event="progress", processed=1, created=1, updated=0, failed=0)
        time.sleep(float(sys.argv[2]))
    elif mode == "stubborn":
        signal.signal(signal.SIGTERM, lambda *a: print("ignoring SIGTERM", flush=True))
        emit(event="progress", processed=1, created=0, updated=0, failed=0)
        while True:
            time.sleep(0.1)
    elif mode == "flood":
        line = ("x" * 99 + "\n").encode()
        chunk = line * 1000
        out = sys.stdout.buffer
        for i in range(int(sys.argv[2]) // len(chunk)):
            out.write(chunk)
            if i % 10 == 0:
                out.write(json.dumps({"event": "progress", "processed": i}).encode() + b"\n")
        out.flush()
    elif mode == "progress_flood":
        out = sys.stdout
        n = int(sys.argv[2])
        for i in range(1, n + 1):
            out.write('{"event": "progress", "processed": %d, "created": %d, "updated": 0, "failed": 0, "total": %d}\n' % (i, i, n))
        out.flush()
    elif mode == "binary":
        sys.stdout.buffer.write(b"bin\x00ary \xff\xfe caf\xc3\xa9\n{\"event\": \"error\", \"message\": \"bad \\u00ff\"}\n")
        sys.stdout.flush()
        sys.stderr.buffer.write(b"oops \x00\xc3\n")
        sys.exit(1)
    elif mode == "edges":
        out = sys.stdout.buffer
        out.write(b'{"event": "progress", "total": 10}\r\n')
        out.write(b'{"event": "progress", "upd')  # a line split across two reads
        out.flush()
        time.sleep(0.3)
        out.write(b'ated": 2}\n')
        out.write(b"y" * 100000 + b"\n")  # longer than a pipe buffer and the parsed-line limit
        out.write(b'{"event": "progress", "failed": 999, "pad": "' + b"z" * 200000 + b'"}\n')
        out.write(b"\xe2\x82 cut\r\n")  # a truncated UTF-8 sequence
        out.write(b'{"event": "progress", "processed": 3, "created": 3}')  # no final newline
        out.flush()
    elif mode == "exit":
        # progress, then the given exit status (75, 77, 78: sysexits.h)
        emit(event="progress", processed=1, created=1, updated=0, failed=0)
        print(f"exiting with {sys.argv[2]}", file=sys.stderr, flush=True)
        sys.exit(int(sys.argv[2]))
    elif mode == "permanent":
        emit(event="error", message="API key revoked", retryable=False)
        sys.exit(1)
    elif mode == "rate_limited":
        # the CRM says wait N s; the command gives up with EX_TEMPFAIL
        emit(event="rate_limited", retry_after=float(sys.argv[2]), message="HTTP 429 Too Many Requests")
        sys.exit(75)
    elif mode == "rate_wait":
        # the command waits out the rate limit itself, silently, then finishes
        emit(event="progress", processed=10, created=10, updated=0, failed=0, total=20)
        emit(event="rate_limited", retry_after=float(sys.argv[2]), message="HTTP 429 Too Many Requests")
        time.sleep(float(sys.argv[2]))
        emit(event="summary", processed=20, created=20, updated=0, failed=0, total=20)
    elif mode == "heartbeat":
        for _ in range(int(float(sys.argv[2]) / 0.3)):
            emit(event="heartbeat")
            time.sleep(0.3)
        emit(event="summary", processed=1, created=1, updated=0, failed=0)
    elif mode == "flaky":
        # every start appends its run id to a file; the first fails with EX_TEMPFAIL
        path = sys.argv[2]
        with open(path, "a") as f:
            f.write(os.environ["CRM_DASHBOARD_SYNC_ID"] + "\n")
        with open(path) as f:
            starts = len(f.read().splitlines())
        if starts == 1:
            if len(sys.argv) > 3 and sys.argv[3] == "rate":
                emit(event="rate_limited", retry_after=2, message="HTTP 429 Too Many Requests")
            sys.exit(75)
        emit(event="summary", processed=5, created=5, updated=0, failed=0)
    elif mode == "steps":
        # N progress events, one every 0.2 s
        n = int(sys.argv[2])
        for i in range(1, n + 1):
            emit(event="progress", processed=i * 10, created=i * 10, updated=0, failed=0, total=n * 10)
            time.sleep(0.2)
    elif mode == "bursts":
        # N bursts of 50 numbered lines ("line <number>"), 0.7 s apart
        n = 0
        for burst in range(int(sys.argv[2])):
            for _ in range(50):
                n += 1
                print(f"line {n}" + (" ERROR: burst failed" if n % 50 == 0 else ""), flush=False)
            sys.stdout.flush()
            time.sleep(0.7)
    elif mode == "crash":
        emit(event="progress", processed=1, created=0, updated=0, failed=0)
        os.kill(os.getpid(), signal.SIGKILL)
    else:
        print(f"unknown mode {mode}", file=sys.stderr)
        sys.exit(2)


main()
