"""A throwaway database on the machine's PostgreSQL server, for the replica measurements.

The server at ``127.0.0.1:5432`` trusts local connections; which role exists differs between
machines (``postgres`` on most, ``root`` on some), so each is tried. The database gets a random
name and is dropped afterwards, even with the bot's connections still open.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator, Sequence

import psycopg
from psycopg import sql

SERVERS = (
    "postgresql://postgres@127.0.0.1:5432/postgres",
    "postgresql://root@127.0.0.1:5432/postgres",
)


def find_server(candidates: Sequence[str] = SERVERS) -> tuple[str | None, str]:
    """The first URL that connects, or ``None`` and why none did."""
    reasons = []
    for url in candidates:
        try:
            with psycopg.connect(url, connect_timeout=3, autocommit=True) as connection:
                connection.execute("SELECT 1")
        except psycopg.Error as error:
            reasons.append(str(error).strip().splitlines()[0] if str(error).strip() else "error")
            continue
        return url, ""
    return None, "; ".join(dict.fromkeys(reasons)) or "no server configured"


@contextlib.contextmanager
def throwaway_database(server_url: str) -> Iterator[str]:
    """Create ``bench_<random>`` on the server, yield its URL, drop it afterwards."""
    name = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{server_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(server_url, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
