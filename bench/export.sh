#!/usr/bin/env bash
# Benchmark of the data tools, each figure beside a baseline from the same run:
#   xlsx export of ROWS x 12 columns (HTTP)     vs  COPY ... TO STDOUT of the same rows
#     (target: >= 0.25x COPY's rows/s), and the peak private memory of the
#     backend writing the workbook at 100,000 and at ROWS rows (target: flat)
#   a filtered keyset page deep in a MODEL_ROWS-row model, indexed filter
#                                               vs  its first page (target: <= 2x) and OFFSET
#   pre-sync checks (not null, unique primary key, accepted values)
#                                               vs  a plain count(*)
# Usage: bench/export.sh [ROWS, default 1000000] [MODEL_ROWS, default 2000000]
# Needs curl and the extension installed (test/install-dev); run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
exec /usr/bin/python3 bench/export_bench.py "${1:-1000000}" "${2:-2000000}"
