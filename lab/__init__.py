"""The telemetry lab: a simulated production estate behind Prometheus, Loki, Tempo and
Kubernetes HTTP APIs. The product never imports this package; it meets the lab over HTTP.
"""
