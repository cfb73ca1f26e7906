"""Faithful stand-ins for services out of reach (DIS, the Slack Web API), over real HTTP.

They are used by the tests, by ``dumptask-bot demo`` and by the benchmarks; nothing in the
production code path imports them.
"""
