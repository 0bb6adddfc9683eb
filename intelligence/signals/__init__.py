"""Signals: each gathers one kind of evidence about an incident from one data source.

A signal is a plain object with ``name``, ``source`` and ``collect(context) -> SignalResult``;
it takes data (the analysis context and a client) and returns data, so it is testable
without Celery or a database. The orchestration (``intelligence.analysis``) runs them.
"""
