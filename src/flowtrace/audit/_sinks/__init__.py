"""Where audit records are stored. A sink is anything implementing :class:`Sink`."""

from __future__ import annotations

from ._base import Sink
from .jsonl import JsonlSink
from .postgres import PostgresCheckpoints, PostgresSink, init_db
from .sqlite import SqliteSink

__all__ = ["JsonlSink", "PostgresCheckpoints", "PostgresSink", "Sink", "SqliteSink", "init_db"]
