"""Log pattern mining: masking, online template mining, scoring and incident evidence.

Plain Python + numpy only (no Django), so the miner runs in Celery, the CLI and tests alike.
"""
