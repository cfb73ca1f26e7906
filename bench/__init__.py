"""Benchmarks: ``python -m bench`` (the bot against a bare Bolt app) and ``audit_export.py``.

``python -m bench`` treats the bot as a black box: it starts ``python -m bot serve`` as an
operator would, talks to it only over HTTP, and reads the results from the stand-ins, from
``/healthz`` and from ``/proc``. So the bot's internals may change (a worker process, a queue)
without the benchmark changing.
"""
