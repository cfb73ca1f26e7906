"""Faithful stand-ins for services out of reach (DIS, the Slack Web API), over real HTTP.

They are used by the tests and by ``dumptask-bot demo``; nothing in the production code path
imports them (the import contract in ``pyproject.toml`` checks it).
"""
