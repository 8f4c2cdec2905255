"""Bridge lineage edges to OpenLineage RunEvents (extra ``flowtrace-sdk[openlineage]``).

Each edge becomes a START event (at the edge's start) and a COMPLETE or FAIL event (at its
end) of run ``uuid5(lineage id)`` of job ``<namespace>/<step name>``, with:

* inputs/outputs: the datasets of the edge's identifiers (record keys and fields are
  dropped: OpenLineage is dataset-level; ``postgres://billing/orders#42`` becomes dataset
  ``orders`` in namespace ``postgres://billing``);
* the ``parent`` run facet pointing at the first lineage parent's run;
* a ``flowtrace`` run facet with the trace id, span id, lineage id and record count, so
  Marquez/DataHub users can jump from a run to its trace.

Register it as a sink:
``flowtrace.configure(lineage=LineageConfig(sinks=[OpenLineageBridge(...)]))``.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any, ClassVar

from ..errors import require_extra
from ._edge import LineageEdge
from ._ids import parse_lineage_id

require_extra("openlineage.client", "openlineage", "the OpenLineage bridge")

import attr  # noqa: E402  (installed with openlineage-python)
from openlineage.client import OpenLineageClient  # noqa: E402
from openlineage.client.event_v2 import (  # noqa: E402
    InputDataset,
    Job,
    OutputDataset,
    Run,
    RunEvent,
    RunState,
)
from openlineage.client.generated.base import RunFacet  # noqa: E402
from openlineage.client.generated.parent_run import (  # noqa: E402
    Job as ParentJob,
)
from openlineage.client.generated.parent_run import (  # noqa: E402
    ParentRunFacet,
)
from openlineage.client.generated.parent_run import (  # noqa: E402
    Run as ParentRun,
)

__all__ = ["FlowtraceRunFacet", "OpenLineageBridge", "dataset_of", "run_id"]

_RUN_NAMESPACE = uuid.UUID("6f1c2b1e-1d0a-4f53-9a8e-0f9a4c6f3b21")
PRODUCER = "https://github.com/flowtrace/flowtrace"


@attr.define
class FlowtraceRunFacet(RunFacet):
    """Links an OpenLineage run to the OTel trace and flowtrace lineage edge."""

    lineageId: str
    traceId: str
    spanId: str
    records: int = 0
    tenant: str | None = attr.field(default=None)
    _additional_skip_redact: ClassVar[list[str]] = ["lineageId", "traceId", "spanId"]

    @staticmethod
    def _get_schema() -> str:
        return PRODUCER + "/blob/main/docs/spec/lineage.md#openlineage-flowtrace-run-facet"


def run_id(lineage_id: str) -> str:
    """The OpenLineage run id of an edge: ``uuid5(<flowtrace namespace>, lineage id)``."""
    return str(uuid.uuid5(_RUN_NAMESPACE, lineage_id))


def dataset_of(identifier: str) -> tuple[str, str]:
    """``(namespace, name)`` of the dataset an identifier belongs to."""
    dataset = identifier.split("::", 1)[0].split("#", 1)[0]
    if "://" in dataset:
        scheme, rest = dataset.split("://", 1)
        authority, _, path = rest.partition("/")
        return f"{scheme}://{authority}", path or authority
    scheme, _, path = dataset.partition(":")
    return (scheme, path) if path else ("flowtrace", scheme)


def _time(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat()


class OpenLineageBridge:
    """A lineage sink that emits OpenLineage RunEvents through openlineage-python.

    ``client``: an ``OpenLineageClient`` (default: one built from ``transport``, or from
    OpenLineage's own environment/config-file resolution when neither is given).

    Example::

        from openlineage.client import OpenLineageClient
        from openlineage.client.transport.console import ConsoleConfig, ConsoleTransport

        import flowtrace as ft
        from flowtrace import lineage

        client = OpenLineageClient(transport=ConsoleTransport(ConsoleConfig()))   # or HTTP/Kafka
        ft.configure(lineage=lineage.LineageConfig(
            sinks=[lineage.OpenLineageBridge(client, namespace="billing")]
        ))
        with ft.context(tenant="acme"):
            lineage.record("copy", inputs="s3://raw/a.csv", outputs="s3://clean/a.csv")
    """

    def __init__(
        self,
        client: Any = None,
        *,
        transport: Any = None,
        namespace: str = "flowtrace",
    ) -> None:
        self.client = client if client is not None else OpenLineageClient(transport=transport)
        self.namespace = namespace
        self._jobs: OrderedDict[str, str] = OrderedDict()

    def _datasets(self, identifiers: tuple[str, ...], cls: Any) -> list[Any]:
        seen: dict[tuple[str, str], None] = {}
        for identifier in identifiers:
            seen.setdefault(dataset_of(identifier), None)
        return [cls(namespace=ns, name=name) for ns, name in seen]

    def events(self, edge: LineageEdge) -> list[RunEvent]:
        """The START and COMPLETE/FAIL events for ``edge``."""
        ids = parse_lineage_id(edge.id)
        facets: dict[str, Any] = {
            "flowtrace": FlowtraceRunFacet(
                lineageId=edge.id,
                traceId=f"{ids[0]:032x}" if ids else "",
                spanId=f"{ids[1]:016x}" if ids else "",
                records=len(edge.outputs),
                tenant=edge.tenant,
                producer=PRODUCER,
            )
        }
        if edge.parents:
            parent = edge.parents[0]
            facets["parent"] = ParentRunFacet(
                run=ParentRun(runId=run_id(parent)),
                job=ParentJob(
                    namespace=self.namespace, name=self._jobs.get(parent, "flowtrace.unknown")
                ),
                producer=PRODUCER,
            )
        run = Run(runId=run_id(edge.id), facets=facets)
        job = Job(namespace=self.namespace, name=edge.name)
        inputs = self._datasets(edge.inputs, InputDataset)
        outputs = self._datasets(edge.outputs, OutputDataset)
        end_state = RunState.FAIL if edge.status == "error" else RunState.COMPLETE
        return [
            RunEvent(
                eventType=RunState.START,
                eventTime=_time(edge.start_ns),
                run=run,
                job=job,
                producer=PRODUCER,
                inputs=inputs,
                outputs=[],
            ),
            RunEvent(
                eventType=end_state,
                eventTime=_time(edge.end_ns or edge.start_ns),
                run=run,
                job=job,
                producer=PRODUCER,
                inputs=inputs,
                outputs=outputs,
            ),
        ]

    def emit(self, edge: LineageEdge) -> None:
        """Emit the edge's events through the client's transport."""
        self._jobs[edge.id] = edge.name
        if len(self._jobs) > 10_000:
            self._jobs.popitem(last=False)
        for event in self.events(edge):
            self.client.emit(event)
