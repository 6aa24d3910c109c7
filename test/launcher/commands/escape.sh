#!/bin/sh
# Leaves a process in a new session holding stdout open, then ends with an unterminated summary line.
setsid sleep 30 &
printf '{"event": "summary", "processed": 7, "created": 7, "updated": 0, "failed": 0}'
