"""``LineageStore``: lineage edges in a database, queried with recursive SQL.

One interface, two engines: SQLite (embedded default: one file, WAL, no server) and
PostgreSQL (shared; the ``postgres`` extra). Queries never load the graph: ``upstream`` and
``downstream`` are one recursive CTE each over indexed tables (edges, their inputs and
outputs, parent links, subjects), filtered by tenant inside the recursion, bounded by depth
(cycle-safe: a (edge, depth) pair is visited once) and by a result limit, and streamed from
the cursor. Answers are the same sets as :class:`~flowtrace.lineage.LineageGraph` gives,
nearest first (then by identifier). Schema and advice: docs/lineage.md ("At scale").
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import LineageError
from ._edge import LineageEdge
from ._graph import LineageGraph, TraceNode
from ._pseudonym import Pseudonymizer, is_pseudonym

__all__ = ["LineageStore"]

_TABLES = (
    "CREATE TABLE IF NOT EXISTS lineage_edges (seq {serial}, id TEXT NOT NULL UNIQUE,"
    " tenant TEXT, start_ns BIGINT NOT NULL, body TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS lineage_inputs (edge TEXT NOT NULL, ident TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS lineage_outputs (edge TEXT NOT NULL, ident TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS lineage_parents (child TEXT NOT NULL, parent TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS lineage_subjects (subject TEXT NOT NULL, edge TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS lineage_positions (source TEXT PRIMARY KEY,"
    " position BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS lineage_inputs_ident ON lineage_inputs (ident, edge)",
    "CREATE INDEX IF NOT EXISTS lineage_inputs_edge ON lineage_inputs (edge)",
    "CREATE INDEX IF NOT EXISTS lineage_outputs_ident ON lineage_outputs (ident, edge)",
    "CREATE INDEX IF NOT EXISTS lineage_outputs_edge ON lineage_outputs (edge)",
    "CREATE INDEX IF NOT EXISTS lineage_parents_child ON lineage_parents (child)",
    "CREATE INDEX IF NOT EXISTS lineage_parents_parent ON lineage_parents (parent)",
    "CREATE INDEX IF NOT EXISTS lineage_subjects_subject ON lineage_subjects (subject)",
)

# One walk, two directions. {ends}: the table whose rows are an edge's far ends (inputs
# going upstream); {via}: the table linking those ends to the next edges (their producers);
# {link_from}/{link_to}: parent links (edge -> its parents upstream, -> its children down).
_WALK_START = """
WITH RECURSIVE reach(edge, depth) AS (
  SELECT s.edge, 1 FROM {start} s JOIN lineage_edges x ON x.id = s.edge
   WHERE s.{start_col} = {p} AND ({t} IS NULL OR x.tenant = {t})
  UNION
"""
# SQLite (3.34+) takes two recursive terms, each an indexed join.
_STEP_SQLITE = """
  SELECT v.edge, r.depth + 1 FROM reach r
    JOIN {ends} n ON n.edge = r.edge
    JOIN {via} v ON v.ident = n.ident
    JOIN lineage_edges x ON x.id = v.edge
   WHERE r.depth < {p} AND ({t} IS NULL OR x.tenant = {t})
  UNION
  SELECT l.{link_to}, r.depth + 1 FROM reach r
    JOIN lineage_parents l ON l.{link_from} = r.edge
    JOIN lineage_edges x ON x.id = l.{link_to}
   WHERE r.depth < {p} AND ({t} IS NULL OR x.tenant = {t})
)
"""
# PostgreSQL allows one recursive reference: join it to the union of both steps.
_STEP_POSTGRES = """
  SELECT y.edge, r.depth + 1 FROM reach r
    JOIN (SELECT n.edge AS src, v.edge AS edge FROM {ends} n
            JOIN {via} v ON v.ident = n.ident
          UNION ALL
          SELECT l.{link_from}, l.{link_to} FROM lineage_parents l) y ON y.src = r.edge
    JOIN lineage_edges x ON x.id = y.edge
   WHERE r.depth < {p} AND ({t} IS NULL OR x.tenant = {t})
)
"""

_NODES = """
SELECT n.ident, MIN(r.depth) AS d FROM reach r JOIN {ends} n ON n.edge = r.edge
 WHERE {excluded}{extra}
 GROUP BY n.ident ORDER BY d, n.ident
"""


class LineageStore:
    """Lineage edges in SQLite or PostgreSQL, answering the same questions as
    :class:`LineageGraph` without loading the graph.

    ``url`` is a file path or ``sqlite:///path`` (SQLite; created with WAL), ``:memory:``,
    or ``postgresql://...`` (needs the ``postgres`` extra). Tables are created if missing.

    Example::

        import flowtrace as ft
        from flowtrace import lineage
        from flowtrace.testing import Capture

        with Capture() as capture, ft.context(tenant="acme"):
            lineage.record("copy", inputs="s3://raw/a.csv", outputs="s3://clean/a.csv")

        with lineage.LineageStore(":memory:") as store:
            assert store.ingest(lineage.read_edges(capture.spans())) == 1
            assert store.ingest(lineage.read_edges(capture.spans())) == 0  # idempotent
            assert store.upstream("s3://clean/a.csv") == ["s3://raw/a.csv"]
            assert store.downstream("s3://raw/a.csv", tenant="acme") == ["s3://clean/a.csv"]
    """

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith(("postgresql://", "postgres://")):
            from ..errors import require_extra

            psycopg: Any = require_extra("psycopg", "postgres", "LineageStore on PostgreSQL")
            self._conn: Any = psycopg.connect(url, autocommit=True)
            self.engine = "postgresql"
            self._p = "%s"
            serial = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
        else:
            # sqlite:///relative.db and sqlite:////absolute.db, as SQLAlchemy spells them.
            path = url.removeprefix("sqlite:///") if url.startswith("sqlite:") else url
            try:
                self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            except sqlite3.Error as exc:
                raise LineageError(f"cannot open lineage store {url!r}: {exc}") from None
            self.engine = "sqlite"
            self._p = "?"
            serial = "INTEGER PRIMARY KEY"
            if path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
        with self._tx() as cur:
            for statement in _TABLES:
                cur.execute(statement.format(serial=serial))

    # --- plumbing -------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        """One write transaction (reads run in autocommit and need none)."""
        cur = self._conn.cursor()
        try:
            if self.engine == "sqlite":
                cur.execute("BEGIN")
                try:
                    yield cur
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
                cur.execute("COMMIT")
            else:
                with self._conn.transaction():
                    yield cur
        finally:
            cur.close()

    def _sql(self, text: str) -> str:
        # PostgreSQL cannot type a bare NULL parameter in "x IS NULL": cast it.
        return text.replace("{t}", f"CAST({self._p} AS TEXT)").replace("{p}", self._p)

    def _rows(self, sql: str, params: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
        cur = self._conn.cursor()
        try:
            cur.execute(sql, tuple(params))
            while rows := cur.fetchmany(1000):
                yield from rows
        finally:
            cur.close()

    def _first(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        cur = self._conn.cursor()
        try:
            cur.execute(sql, params)
            row: tuple[Any, ...] | None = cur.fetchone()
            return row
        finally:
            cur.close()

    def _exists(self, sql: str, params: tuple[Any, ...]) -> bool:
        return self._first(sql, params) is not None

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def __enter__(self) -> LineageStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing --------------------------------------------------------------------------

    def position(self, source: str) -> int:
        """How many edges of ``source`` were ingested (0 if never): where ingest resumes."""
        row = self._first(
            self._sql("SELECT position FROM lineage_positions WHERE source = {p}"), (source,)
        )
        return 0 if row is None else int(row[0])

    def ingest(
        self, edges: Iterable[LineageEdge], *, source: str | None = None, batch: int = 5000
    ) -> int:
        """Add ``edges`` in batches of ``batch``; returns how many were new.

        Idempotent by edge id: re-ingesting adds nothing. With ``source`` (a name, usually
        the path read), the number of edges consumed is recorded with each batch, and a
        later call with the same ``source`` skips that many first (resumable).
        """
        skip = self.position(source) if source is not None else 0
        consumed, added, chunk = 0, 0, []
        for edge in edges:
            consumed += 1
            if consumed <= skip:
                continue
            chunk.append(edge)
            if len(chunk) >= batch:
                added += self._write(chunk, source, consumed)
                chunk = []
        if chunk or (source is not None and consumed > skip):
            added += self._write(chunk, source, consumed)
        return added

    def _write(self, chunk: list[LineageEdge], source: str | None, consumed: int) -> int:
        p = self._p
        with self._tx() as cur:
            fresh: dict[str, LineageEdge] = {}
            for edge in chunk:
                fresh.setdefault(edge.id, edge)
            ids = list(fresh)
            for i in range(0, len(ids), 500):
                part = ids[i : i + 500]
                cur.execute(
                    f"SELECT id FROM lineage_edges WHERE id IN ({','.join([p] * len(part))})",
                    part,
                )
                for (known,) in cur.fetchall():
                    del fresh[known]
            new = list(fresh.values())
            cur.executemany(
                f"INSERT INTO lineage_edges (id, tenant, start_ns, body) VALUES ({p},{p},{p},{p})",
                [(e.id, e.tenant, e.start_ns, e.to_json()) for e in new],
            )
            for table, rows in (
                ("lineage_inputs (edge, ident)", [(e.id, i) for e in new for i in e.inputs]),
                ("lineage_outputs (edge, ident)", [(e.id, o) for e in new for o in e.outputs]),
                ("lineage_parents (child, parent)", [(e.id, x) for e in new for x in e.parents]),
                ("lineage_subjects (edge, subject)", [(e.id, s) for e in new for s in e.subjects]),
            ):
                if rows:
                    cur.executemany(f"INSERT INTO {table} VALUES ({p},{p})", rows)
            if source is not None:
                cur.execute(
                    f"INSERT INTO lineage_positions (source, position) VALUES ({p},{p}) "
                    "ON CONFLICT (source) DO UPDATE SET position = excluded.position",
                    (source, consumed),
                )
        return len(new)

    # --- reading --------------------------------------------------------------------------

    def __len__(self) -> int:
        row = self._first("SELECT COUNT(*) FROM lineage_edges", ())
        return 0 if row is None else int(row[0])

    def _is_node(self, identifier: str) -> bool:
        sql = self._sql(
            "SELECT 1 WHERE EXISTS (SELECT 1 FROM lineage_outputs WHERE ident = {p})"
            " OR EXISTS (SELECT 1 FROM lineage_inputs WHERE ident = {p})"
        )
        return self._exists(sql, (identifier, identifier))

    def _is_edge(self, identifier: str) -> bool:
        sql = self._sql("SELECT 1 FROM lineage_edges WHERE id = {p}")
        return self._exists(sql, (identifier,))

    def __contains__(self, identifier: object) -> bool:
        return isinstance(identifier, str) and (
            self._is_node(identifier) or self._is_edge(identifier)
        )

    def edge(self, edge_id: str) -> LineageEdge:
        """The edge with this lineage id; raises :class:`LineageError` if unknown."""
        row = self._first(self._sql("SELECT body FROM lineage_edges WHERE id = {p}"), (edge_id,))
        if row is not None:
            return LineageEdge.from_json(row[0])
        raise LineageError(f"no lineage edge with id {edge_id!r} in this store")

    def _step_params(self, max_depth: int, tenant: str | None) -> list[Any]:
        return [max_depth, tenant, tenant] * (2 if self.engine == "sqlite" else 1)

    def _walk_sql(self, up: bool, start: str) -> str:
        if start == "edge":
            start_table, start_col = "lineage_edges", "id"
        elif start == "subject":
            start_table, start_col = "lineage_subjects", "subject"
        else:
            start_table, start_col = ("lineage_outputs" if up else "lineage_inputs"), "ident"
        # lineage_edges has no "edge" column: alias its id.
        start_from = (
            "(SELECT id AS edge, id FROM lineage_edges)" if start == "edge" else start_table
        )
        return self._sql(
            (_WALK_START + (_STEP_SQLITE if self.engine == "sqlite" else _STEP_POSTGRES)).format(
                start=start_from,
                start_col=start_col,
                start_extra="",
                ends="lineage_inputs" if up else "lineage_outputs",
                via="lineage_outputs" if up else "lineage_inputs",
                link_from="child" if up else "parent",
                link_to="parent" if up else "child",
                p="{p}",
                t="{t}",
            )
        )

    def _walk(
        self,
        identifier: str,
        up: bool,
        tenant: str | None,
        max_depth: int,
        limit: int | None,
        only_sources: bool = False,
    ) -> Iterator[str]:
        if self._is_node(identifier):
            start, excluded = "node", [identifier]
        elif self._is_edge(identifier):
            start, excluded = "edge", []
        else:
            raise LineageError(
                f"{identifier!r} is neither a data identifier nor an edge id in this store"
            )
        extra = (
            " AND NOT EXISTS (SELECT 1 FROM lineage_outputs o WHERE o.ident = n.ident)"
            if only_sources
            else ""
        )
        sql = self._walk_sql(up, start) + self._sql(
            _NODES.format(
                ends="lineage_inputs" if up else "lineage_outputs",
                excluded="n.ident <> {p}" if excluded else "1 = 1",
                extra=extra,
            )
        )
        params: list[Any] = [identifier, tenant, tenant]
        params += self._step_params(max_depth, tenant) + excluded
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return (ident for ident, _ in self._rows(sql, params))

    def iter_upstream(
        self,
        identifier: str,
        *,
        tenant: str | None = None,
        max_depth: int = 64,
        limit: int | None = None,
    ) -> Iterator[str]:
        """Stream what ``identifier`` (an identifier or edge id) was derived from, nearest
        first, following at most ``max_depth`` edges and yielding at most ``limit`` ids."""
        return self._walk(identifier, True, tenant, max_depth, limit)

    def iter_downstream(
        self,
        identifier: str,
        *,
        tenant: str | None = None,
        max_depth: int = 64,
        limit: int | None = None,
    ) -> Iterator[str]:
        """Stream what was derived from ``identifier``, nearest first (see iter_upstream)."""
        return self._walk(identifier, False, tenant, max_depth, limit)

    def upstream(self, identifier: str, **options: Any) -> list[str]:
        """The list form of :meth:`iter_upstream` (same options)."""
        return list(self.iter_upstream(identifier, **options))

    def downstream(self, identifier: str, **options: Any) -> list[str]:
        """The list form of :meth:`iter_downstream` (same options)."""
        return list(self.iter_downstream(identifier, **options))

    def sources(
        self, identifier: str, *, tenant: str | None = None, max_depth: int = 64
    ) -> list[str]:
        """The upstream identifiers that no edge produced: the original source records."""
        return list(self._walk(identifier, True, tenant, max_depth, None, only_sources=True))

    def derived_from(
        self,
        subject: str,
        *,
        tenant: str,
        pseudonymizer: Pseudonymizer | None = None,
        max_depth: int = 64,
    ) -> list[str]:
        """Everything recorded about ``subject`` in ``tenant`` and everything derived from
        it: the inputs of every edge naming the subject, then all downstream of them."""
        if not is_pseudonym(subject):
            if pseudonymizer is None:
                from ._runtime import lineage_config

                pseudonymizer = lineage_config().pseudonymizer
            from ._pseudonym import require_pseudonymizer

            subject = require_pseudonymizer(pseudonymizer).pseudonym(subject, tenant)
        sql = (
            self._walk_sql(False, "subject")
            + "SELECT ident FROM ("
            + self._sql(
                "SELECT i.ident AS ident, 0 AS d FROM lineage_subjects s"
                " JOIN lineage_edges x ON x.id = s.edge"
                " JOIN lineage_inputs i ON i.edge = s.edge"
                " WHERE s.subject = {p} AND x.tenant = {p}"
                " UNION ALL SELECT n.ident, r.depth FROM reach r"
                " JOIN lineage_outputs n ON n.edge = r.edge"
            )
            + ") found GROUP BY ident ORDER BY MIN(d), ident"
        )
        params = [subject, tenant, tenant, *self._step_params(max_depth, tenant), subject, tenant]
        return [ident for (ident,) in self._rows(sql, params)]

    def trace(
        self, identifier: str, *, tenant: str | None = None, max_depth: int = 64
    ) -> TraceNode:
        """The upstream tree of ``identifier``, as :meth:`LineageGraph.trace` builds it.

        Only the edges the tree can reach (at most ``max_depth`` deep) are read.
        """
        if identifier not in self:
            raise LineageError(
                f"{identifier!r} is neither a data identifier nor an edge id in this store"
            )
        start = "node" if self._is_node(identifier) else "edge"
        # The reached edges, plus their parents in any tenant (the tree names them).
        sql = self._walk_sql(True, start) + (
            "SELECT x.body FROM lineage_edges x WHERE x.id IN (SELECT edge FROM reach)"
            " OR x.id IN (SELECT l.parent FROM reach r"
            " JOIN lineage_parents l ON l.child = r.edge) ORDER BY x.seq"
        )
        params = [identifier, tenant, tenant, *self._step_params(max_depth, tenant)]
        graph = LineageGraph(LineageEdge.from_json(body) for (body,) in self._rows(sql, params))
        if identifier not in graph:
            return TraceNode(identifier)
        return graph.trace(identifier, tenant=tenant, max_depth=max_depth)
