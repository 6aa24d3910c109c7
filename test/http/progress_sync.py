"""A small sync command for the HTTP tests: prints progress as JSON lines."""
import json
import sys
import time

STEPS = 5
for i in range(1, STEPS + 1):
    print(json.dumps({"event": "progress", "processed": i * 10, "created": i * 10, "updated": 0,
                      "failed": 0, "total": STEPS * 10}), flush=True)
    time.sleep(0.15)
print(json.dumps({"event": "summary", "processed": STEPS * 10, "created": STEPS * 10, "updated": 0,
                  "failed": 0}), flush=True)
sys.exit(0)
