"""Where audit records are stored. A sink is anything implementing :class:`Sink`."""

from __future__ import annotations

from ._base import Sink
from .jsonl import JsonlSink
from .postgres import PostgresSink
from .sqlite import SqliteSink

__all__ = ["JsonlSink", "PostgresSink", "Sink", "SqliteSink"]
