"""Never lost: sampling bypass, the durable buffer, at-least-once shipping, bounded overflow."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

import flowtrace as ft
from flowtrace import lineage
from flowtrace.errors import ConfigError, LineageBufferError, LineageBufferFullError
from flowtrace.lineage import LineageBuffer, LineageEdge, LineageGraph, read_edges
from flowtrace.otel import get_tracer


class FlakyExporter(SpanExporter):
    """Refuses every batch while ``down`` is set; records what it accepted."""

    def __init__(self) -> None:
        self.down = True
        self.received: list[ReadableSpan] = []
        self.refused = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.down:
            self.refused += 1
            return SpanExportResult.FAILURE
        self.received.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


KEY32 = b"k" * 32


def edge(n: int) -> LineageEdge:
    return LineageEdge(
        id=lineage.new_lineage_id(),
        name="n",
        inputs=(f"mem:in/{n}",),
        outputs=(f"mem:out/{n}",),
        start_ns=n,
        end_ns=n + 1,
    )


def test_lineage_sampler_keeps_every_edge_at_ten_percent() -> None:
    """With 10% head sampling every edge span is exported; other spans are still sampled."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=lineage.LineageSampler(TraceIdRatioBased(0.1)))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    ft.configure(tracer_provider=provider)

    @ft.step("enrich", inputs=lambda i: [f"mem:in/{i}"], outputs=lambda r: [f"mem:out/{r}"])
    def enrich(i: int) -> int:
        return i

    for i in range(1000):
        with get_tracer().start_as_current_span("request"):
            enrich(i)
    finished = exporter.get_finished_spans()
    lineage_spans = [s for s in finished if s.name == "lineage enrich"]
    requests = [s for s in finished if s.name == "request"]
    assert len(lineage_spans) == 1000
    assert 30 < len(requests) < 200  # the delegate still samples ~10%
    assert "TraceIdRatioBased" in lineage.LineageSampler(TraceIdRatioBased(0.1)).get_description()


def test_every_edge_delivered_after_exporter_recovers(tmp_path: Path) -> None:
    """10% sampling + a failing exporter: after recovery delivered == produced, by id."""
    live = InMemorySpanExporter()
    provider = TracerProvider(sampler=TraceIdRatioBased(0.1))  # no bypass on the live path
    provider.add_span_processor(SimpleSpanProcessor(live))
    ft.configure(tracer_provider=provider)
    backend = FlakyExporter()
    buffer = LineageBuffer(tmp_path / "buf", exporter=backend, batch_size=100)
    ft.configure(lineage=ft.lineage.LineageConfig(buffer=buffer))

    @ft.step("normalize", inputs=lambda i: [f"stripe:charge/ch_{i}"], outputs=lambda r: [r])
    def normalize(i: int) -> str:
        return f"pg://billing/orders#{i}"

    produced = [normalize(i) for i in range(2000)]
    assert buffer.ship() == 0  # the backend is down: nothing acknowledged
    assert backend.refused == 1
    assert buffer.stats().pending == 2000
    assert len(live.get_finished_spans()) < 400  # the live path lost most edges to sampling

    # At-least-once: a crash between export and ack re-ships a batch; ids dedupe it.
    backend.down = False
    ack = tmp_path / "buf" / "ack"
    assert buffer.ship() == 2000
    stats = buffer.stats()
    assert (stats.shipped, stats.pending, stats.export_failures) == (2000, 0, 1)
    ack.unlink()  # as if the ack had never been written
    buffer.close(ship=False)
    reopened = LineageBuffer(tmp_path / "buf", exporter=backend, keep_shipped=True)
    assert reopened.stats().pending == 2000  # everything after the (lost) ack re-ships
    reopened.ship()
    reopened.close()

    graph = LineageGraph(read_edges(backend.received))
    graph.add_all(read_edges(live.get_finished_spans()))
    assert len(graph) == 2000
    assert {e.outputs[0] for e in graph} == set(produced)


def test_redelivery_after_lost_ack_is_deduplicated(tmp_path: Path) -> None:
    """Edges re-shipped because the ack was lost are dropped by id when the graph is built."""
    backend = FlakyExporter()
    backend.down = False
    buffer = LineageBuffer(tmp_path, exporter=backend, keep_shipped=True)
    for i in range(10):
        buffer.append(edge(i))
    assert buffer.ship() == 10
    buffer.close(ship=False)
    (tmp_path / "ack").unlink()
    again = LineageBuffer(tmp_path, exporter=backend)
    assert again.stats().pending == 10
    assert again.ship() == 10
    again.close()
    assert len(backend.received) == 20
    graph = LineageGraph(read_edges(backend.received))
    assert (len(graph), graph.duplicates) == (10, 10)


def test_append_never_waits_for_a_slow_exporter(tmp_path: Path) -> None:
    """While the shipper is stuck inside export, appends complete and are shipped later."""
    entered, release = threading.Event(), threading.Event()

    class Slow(FlakyExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            entered.set()
            assert release.wait(30)
            return super().export(spans)

    backend = Slow()
    backend.down = False
    buffer = LineageBuffer(tmp_path, exporter=backend, batch_size=10)
    buffer.append(edge(-1))
    buffer.start(interval=0.01)
    assert entered.wait(30)
    for i in range(500):  # the exporter is blocked the whole time
        assert buffer.append(edge(i))
    assert buffer.stats().appended == 501
    release.set()
    buffer.close()  # stops the thread, then ships whatever is left
    assert len({s.context.span_id for s in backend.received}) == 501


def test_concurrent_appends_from_threads_are_all_intact(tmp_path: Path) -> None:
    """Eight threads appending at once while a shipper runs lose and tear nothing."""
    backend = FlakyExporter()
    backend.down = False
    buffer = LineageBuffer(tmp_path, exporter=backend, segment_bytes=20_000)
    buffer.start(interval=0.001)

    def produce(t: int) -> None:
        for i in range(300):
            buffer.append(edge(t * 1000 + i))

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    buffer.close()
    assert len(backend.received) == 2400
    assert len({e.id for e in read_edges(backend.received)}) == 2400
    assert buffer.stats().quarantined == 0


def test_overflow_drop_policy_is_counted(tmp_path: Path) -> None:
    """A full buffer drops new edges, counts every drop, and accepts again after shipping."""
    backend = FlakyExporter()
    line = len(edge(0).to_json()) + 1
    buffer = LineageBuffer(tmp_path, exporter=backend, max_bytes=line * 5 + 3)
    results = [buffer.append(edge(i)) for i in range(8)]
    assert results == [True] * 5 + [False] * 3
    assert buffer.stats().dropped == 3
    backend.down = False
    assert buffer.ship() == 5
    assert buffer.append(edge(9))
    buffer.close()


def test_overflow_raise_policy(tmp_path: Path) -> None:
    """overflow='raise' raises LineageBufferFullError instead of dropping, and counts it."""
    line = len(edge(0).to_json()) + 1
    buffer = LineageBuffer(tmp_path, max_bytes=line, overflow="raise")
    assert buffer.append(edge(0))
    with pytest.raises(LineageBufferFullError, match="max_bytes"):
        buffer.append(edge(1))
    assert (buffer.stats().dropped, buffer.stats().pending) == (1, 1)
    buffer.close(ship=False)


def test_raise_policy_surfaces_through_step(tmp_path: Path) -> None:
    """With overflow='raise' a step whose edge cannot be buffered raises to the caller."""
    buffer = LineageBuffer(tmp_path, max_bytes=10, overflow="raise")
    ft.configure(lineage=ft.lineage.LineageConfig(buffer=buffer))

    @ft.step("s", outputs=["mem:x"])
    def s() -> None:
        pass

    with pytest.raises(LineageBufferFullError):
        s()
    assert buffer.stats().dropped == 1
    buffer.close()


def test_edges_survive_a_process_crash(tmp_path: Path) -> None:
    """A process killed without closing its buffer loses no appended edge."""
    code = f"""
import os
from flowtrace.lineage import LineageBuffer, LineageEdge
b = LineageBuffer({str(tmp_path)!r}, fsync_interval=3600)
for i in range(100):
    b.append(LineageEdge(id=f"{{i:032x}}-{{i + 1:016x}}", name="crash", outputs=(f"mem:{{i}}",)))
os._exit(9)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert result.returncode == 9, result.stderr
    recovered = list(lineage.read_buffer(tmp_path))
    assert [e.outputs[0] for e in recovered] == [f"mem:{i}" for i in range(100)]
    reopened = LineageBuffer(tmp_path)  # the dead process's directory lock is gone
    assert reopened.stats().pending == 100
    reopened.close(ship=False)


def test_torn_last_line_is_cut_on_open(tmp_path: Path) -> None:
    """A torn final line (crash mid-write) is cut and counted; complete lines are kept."""
    buffer = LineageBuffer(tmp_path)
    buffer.append(edge(1))
    buffer.close(ship=False)
    (segment,) = tmp_path.glob("edges-*.jsonl")
    with open(segment, "ab") as f:
        f.write(b'{"v":1,"id":"tor')
    reopened = LineageBuffer(tmp_path)
    assert reopened.stats().torn == 1
    assert reopened.stats().pending == 1
    reopened.append(edge(2))
    reopened.close(ship=False)
    assert [e.outputs for e in lineage.read_buffer(tmp_path)] == [("mem:out/1",), ("mem:out/2",)]


def test_unparseable_lines_are_quarantined_not_shipped(tmp_path: Path) -> None:
    """A garbage line is moved to quarantine.jsonl and counted; the rest still ships."""
    backend = FlakyExporter()
    backend.down = False
    buffer = LineageBuffer(tmp_path, exporter=backend)
    buffer.append(edge(1))
    (segment,) = tmp_path.glob("edges-*.jsonl")
    with open(segment, "ab") as f:
        f.write(b"not json\n")
    buffer.append(edge(2))
    assert buffer.ship() == 2
    assert buffer.stats().quarantined == 1
    assert (tmp_path / "quarantine.jsonl").read_bytes() == b"not json\n"
    buffer.close()


def test_segments_roll_and_shipped_segments_are_deleted(tmp_path: Path) -> None:
    """Segments roll at segment_bytes and are removed once acknowledged."""
    backend = FlakyExporter()
    buffer = LineageBuffer(tmp_path, exporter=backend, segment_bytes=1000)
    for i in range(50):
        buffer.append(edge(i))
    assert len(list(tmp_path.glob("edges-*.jsonl"))) > 3
    backend.down = False
    assert buffer.ship() == 50
    assert len(list(tmp_path.glob("edges-*.jsonl"))) == 1
    buffer.close()
    assert len(backend.received) == 50


def test_corrupted_ack_file_raises(tmp_path: Path) -> None:
    """An unreadable ack file raises LineageBufferError saying what to do."""
    (tmp_path / "ack").write_text("{broken")
    with pytest.raises(LineageBufferError, match="delete it to re-ship"):
        LineageBuffer(tmp_path)


def test_closed_buffer_refuses_appends(tmp_path: Path) -> None:
    """Appending to a closed buffer raises instead of losing the edge silently."""
    buffer = LineageBuffer(tmp_path)
    buffer.close()
    with pytest.raises(LineageBufferError, match="closed"):
        buffer.append(edge(0))


@pytest.mark.parametrize(
    "kwargs",
    [{"overflow": "block"}, {"max_bytes": 0}, {"batch_size": -1}, {"fsync_interval": -1.0}],
)
def test_bad_buffer_options(tmp_path: Path, kwargs: dict[str, object]) -> None:
    """Invalid buffer options raise ConfigError."""
    with pytest.raises(ConfigError):
        LineageBuffer(tmp_path, **kwargs)  # type: ignore[arg-type]


def test_configure_validates() -> None:
    """lineage.configure rejects wrong types and conflicting key options."""
    with pytest.raises(ConfigError):
        lineage.LineageConfig(buffer="not a buffer")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        lineage.LineageConfig(pseudonym_key=KEY32, pseudonymizer=lineage.Pseudonymizer(KEY32))
    with pytest.raises(ConfigError):
        lineage.LineageConfig(sinks=[object()])  # type: ignore[list-item]


def test_one_writer_per_directory(tmp_path: Path) -> None:
    """A second buffer on the same directory is refused until the first is closed."""
    first = LineageBuffer(tmp_path)
    with pytest.raises(LineageBufferError, match="already open"):
        LineageBuffer(tmp_path)
    first.close()
    LineageBuffer(tmp_path).close()


operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 30)),
        st.tuples(st.just("ship"), st.booleans()),
        st.tuples(st.just("reopen"), st.booleans()),
        st.tuples(st.just("lose_ack"), st.just(True)),
    ),
    max_size=12,
)


@settings(max_examples=30, deadline=None)
@given(operations, st.integers(300, 5000))
def test_any_history_of_failures_delivers_every_edge(
    ops: list[tuple[str, object]], segment_bytes: int
) -> None:
    """Any mix of appends, failed/successful ships, restarts and lost acks ends with every
    appended edge delivered at least once, and nothing delivered that was not appended."""
    backend = FlakyExporter()
    appended: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:

        def reopen() -> LineageBuffer:
            return LineageBuffer(tmp, exporter=backend, segment_bytes=segment_bytes, batch_size=7)

        buffer = reopen()
        for op, arg in ops:
            if op == "append":
                for _ in range(int(arg)):  # type: ignore[call-overload]
                    e = edge(len(appended))
                    assert buffer.append(e)
                    appended.append(e.id)
            elif op == "ship":
                backend.down = not arg
                buffer.ship()
            elif op == "reopen":
                buffer.close(ship=bool(arg))
                buffer = LineageBuffer(
                    tmp, exporter=backend, segment_bytes=segment_bytes, batch_size=7
                )
            else:  # a crash lost the ack: everything still on disk ships again
                buffer.close(ship=False)
                (Path(tmp) / "ack").unlink(missing_ok=True)
                buffer = LineageBuffer(
                    tmp, exporter=backend, segment_bytes=segment_bytes, batch_size=7
                )
        backend.down = False
        buffer.ship()
        assert buffer.stats().pending == 0
        buffer.close()
    delivered = [e.id for e in read_edges(backend.received)]
    assert set(delivered) == set(appended)
