"""The cache of unwrapped data keys: bounded by age, uses and entries; single-flight loads.

Only :class:`~flowtrace.crypto._keys.DerivedKeys` are cached (never raw DEKs). Time comes
from an injectable monotonic clock so tests can drive expiry deterministically.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Generic, TypeVar

from ..errors import ConfigError
from . import _token
from ._accel import FASTPATH
from ._keys import DerivedKeys
from ._stores import KeyringRecord

__all__ = ["CachePolicy", "Entry", "KeyCache", "SingleFlight"]

T = TypeVar("T")
_MAX_TAILS: Final = 4096


@dataclass(frozen=True)
class CachePolicy:
    """Limits on unwrapped data keys held in memory.

    * ``max_age``: seconds an unwrapped DEK is used before it is unwrapped again.
    * ``max_uses``: encryptions + decryptions per cached DEK before it is unwrapped again.
    * ``max_entries``: DEK versions held at once (least recently used are dropped).
    * ``stale_grace``: while the key provider is unavailable, *encryption* may keep using an
      expired active key for this many more seconds (its hard limit), then fails closed.
    * ``revalidate_interval``: how often (seconds) the vault's change log is polled; a
      shred, rotation or retirement made by another process takes effect here within this
      bound (plus the time of one store query).

    Example::

        from flowtrace.crypto import CachePolicy, KeyVault, LocalKeyProvider

        vault = KeyVault(
            LocalKeyProvider.generate("kek"),
            kek_id="kek",
            cache=CachePolicy(max_age=60, max_entries=1000),   # unwrapped keys live <= 60 s
        )
    """

    max_age: float = 300.0
    max_uses: int = 1_000_000
    max_entries: int = 10_000
    stale_grace: float = 300.0
    revalidate_interval: float = 1.0

    def __post_init__(self) -> None:
        if self.max_age <= 0 or self.stale_grace < 0 or self.revalidate_interval < 0:
            raise ConfigError(
                "CachePolicy: max_age > 0, stale_grace >= 0, revalidate_interval >= 0"
            )
        if self.max_uses < 1 or self.max_entries < 1:
            raise ConfigError("CachePolicy: max_uses and max_entries must be at least 1")


class _PyEntryBase:
    """Storage of :class:`Entry` (the C ``_fastpath.EntryBase`` when it is built)."""

    __slots__ = ("keyring", "keys", "loaded_at", "prefixes", "tails", "uses", "version")

    keyring: KeyringRecord
    keys: DerivedKeys
    loaded_at: float
    prefixes: tuple[bytes, ...]
    tails: dict[str, bytes]
    uses: int
    version: int


if TYPE_CHECKING:  # both bases store the same attributes; type-check the Python one
    _EntryBase = _PyEntryBase
else:
    _EntryBase = _PyEntryBase if FASTPATH is None else FASTPATH.EntryBase


class Entry(_EntryBase):
    """One cached DEK version with the keyring facts needed to authorize its use."""

    __slots__ = ()

    def __init__(
        self, keyring: KeyringRecord, version: int, keys: DerivedKeys, loaded_at: float
    ) -> None:
        self.keyring = keyring
        self.version = version
        self.keys = keys
        self.loaded_at = loaded_at
        self.uses = 1  # the use that loaded it
        # Header bytes 0..11 for each flags value (see docs/spec/token.md).
        self.prefixes = tuple(
            _token.pack_header(flags, keyring.dek_id, version, b"") for flags in range(4)
        )
        self.tails = {}

    def aad_tail(self, field: str) -> bytes:
        """Field tag || the AAD after the header for ``field`` with no context (memoized;
        used by the C fast path)."""
        tail = self.keys.field_tag(field) + _token.associated_data(
            b"", self.keyring.tenant, field, None
        )
        if len(self.tails) < _MAX_TAILS:
            self.tails[field] = tail
        return tail


class KeyCache:
    """Map from a key (``(dek_id, version)`` or an active scope) to an :class:`Entry`.

    Beyond ``max_entries`` the entry loaded longest ago is dropped first.
    """

    def __init__(self, policy: CachePolicy, clock: Callable[[], float]) -> None:
        self._policy = policy
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self._max_age = policy.max_age
        self._max_uses = policy.max_uses
        self._stale_limit = policy.max_age + policy.stale_grace

    def get(self, key: Hashable, now: float, *, stale_ok: bool = False) -> Entry | None:
        """A usable entry (counting one use), or ``None``. ``stale_ok`` allows the grace.

        Lock-free on purpose (the hot path): under concurrent use ``uses`` may undercount
        by a few, so ``max_uses`` is approximate by at most the number of threads.
        """
        entry = self._entries.get(key)
        if entry is None:
            return None
        if now - entry.loaded_at >= (self._stale_limit if stale_ok else self._max_age) or (
            entry.uses >= self._max_uses
        ):
            return None
        entry.uses += 1
        return entry

    def put(self, key: Hashable, entry: Entry) -> None:
        """Insert ``entry``, dropping the oldest loaded beyond ``max_entries``."""
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = entry
            while len(self._entries) > self._policy.max_entries:
                self._entries.popitem(last=False)

    def evict(self, dek_ids: set[bytes]) -> None:
        """Drop every entry of these keyrings."""
        with self._lock:
            for key in [k for k, e in self._entries.items() if e.keyring.dek_id in dek_ids]:
                del self._entries[key]

    def clear(self) -> None:
        """Drop everything."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def entries(self) -> Mapping[Hashable, Entry]:
        """The live entries (read by FieldEncryptor's C fast path; mutate through methods)."""
        return self._entries


class _Flight(Generic[T]):
    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None


class SingleFlight(Generic[T]):
    """Concurrent loads of the same key run once; the others wait for its result."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[Hashable, _Flight[T]] = {}

    def run(self, key: Hashable, load: Callable[[], T]) -> T:
        """``load()`` once per key at a time; followers get the leader's result or error."""
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            assert flight.result is not None
            return flight.result
        try:
            flight.result = load()
            return flight.result
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()
