# The two commands: `make run` (the product + demo, nothing to start first) and `make test`.
.PHONY: run test lint format bench bench-ingest bench-lab bench-correlation bench-logs bench-analysis

run:
	scripts/bootstrap.sh run
	scripts/run.sh

test:
	scripts/test.sh

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format:
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

bench: bench-ingest bench-lab bench-correlation bench-logs bench-analysis

bench-ingest:
	scripts/bootstrap.sh bench
	scripts/bench.sh ingest

bench-lab:
	scripts/bootstrap.sh bench
	.venv/bin/python -m benchmarks.bench_lab

# Correlation quality and speed on lab alert storms, ours beside two baselines, plus the
# webhook-to-incident latency during a 2,000-alert storm on throwaway PostgreSQL and Redis
# (bench-results/correlation.md), in both modes: correlation in the request (eager, the
# embedded default) and on the correlation queue with a real Celery worker (as deployed).
# `make bench-correlation BENCH_ARGS=--only-latency` re-measures only the latency.
bench-correlation:
	scripts/bootstrap.sh
	scripts/bench.sh correlation $(BENCH_ARGS)

# Log template mining: our miner beside drain3 on the Loghub-2k systems (not a test).
bench-logs:
	scripts/bootstrap.sh bench
	.venv/bin/python -m benchmarks.bench_logs

# Incident analysis on lab scenarios (every fault kind, several seeds, overlaps): open to
# first insight / complete, data-source calls, root cause in the top 3 (bench-results/analysis.md)
bench-analysis:
	scripts/bootstrap.sh bench
	scripts/bench.sh analysis $(BENCH_ARGS)
