# The two commands: `make run` (the product + demo, nothing to start first) and `make test`.
.PHONY: run test lint format bench bench-ingest bench-lab

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

bench: bench-ingest bench-lab

bench-ingest:
	scripts/bootstrap.sh bench
	scripts/bench.sh ingest

bench-lab:
	scripts/bootstrap.sh bench
	.venv/bin/python -m benchmarks.bench_lab
