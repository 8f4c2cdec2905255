"""The cache of unwrapped data keys: bounded by age, uses and entries; single-flight loads.

Only :class:`~flowtrace.crypto._keys.DerivedKeys` are cached (never raw DEKs). Time comes
from an injectable monotonic clock so tests can drive expiry deterministically.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from ..errors import ConfigError
from . import _token
from ._keys import DerivedKeys
from ._stores import KeyringRecord

__all__ = ["Binding", "CachePolicy", "Entry", "KeyCache", "SingleFlight"]

T = TypeVar("T")
_MAX_FIELDS: Final = 4096
_MAX_INDEXED: Final = 65536


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


class Entry:
    """One cached DEK version with the keyring facts needed to authorize its use."""

    __slots__ = ("__weakref__", "bindings", "evicted", "keyring", "keys", "loaded_at",
                 "prefixes", "refs", "uses", "version")

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
        self.bindings: dict[str, Binding] = {}
        self.refs = 0  # how many cache keys hold it (an active scope and its version)
        self.evicted = False  # set once no cache key holds it: never indexed again

    def bind(self, field: str) -> Binding:
        """The :class:`Binding` of ``field`` (memoized up to 4,096 fields per key)."""
        binding = self.bindings.get(field)
        if binding is None:
            binding = Binding(self, field)
            if len(self.bindings) < _MAX_FIELDS and not self.evicted:
                self.bindings[field] = binding
        return binding


class Binding:
    """What one cached key needs to seal and open randomized tokens of one field.

    Everything here is a pure function of the entry (tenant, DEK id and version, derived
    keys) and the field, computed once with the functions of :mod:`._token` and
    :mod:`._keys`: the 30-byte head of a randomized str token (header with flags 0, then
    the key commitment) and its 40-character text, and the associated data up to the
    caller's context. FieldEncryptor assembles and opens tokens with them (its common call).
    """

    __slots__ = ("aad", "aad_prefix", "decrypt", "encrypt", "entry", "field", "sealer_key",
                 "tenant", "text", "valid_until")

    def __init__(self, entry: Entry, field: str) -> None:
        keyring = entry.keyring
        header = entry.prefixes[0] + entry.keys.field_tag(field)
        self.entry = entry
        self.field = field
        self.tenant = keyring.tenant
        # 30 bytes, so exactly 40 characters that prefix the text of every such token.
        self.text = _token.encode_text(header + entry.keys.commitment)
        self.aad_prefix = _token.aad_prefix(header, keyring.tenant, field)
        self.aad = self.aad_prefix + _token.context_data(None)
        self.sealer_key = (keyring.tenant, keyring.subject, field)
        self.encrypt = entry.keys.gcm.encrypt
        self.decrypt = entry.keys.gcm.decrypt
        self.valid_until = float("-inf")  # set by KeyCache when indexed


class KeyCache:
    """Map from a key (``(dek_id, version)`` or an active scope) to an :class:`Entry`.

    Beyond ``max_entries`` the entry loaded longest ago is dropped first. One entry may be
    held under two keys (a scope's active key is also its ``(dek_id, version)``); once no
    key holds it any more it is marked ``evicted``.

    The cache also indexes the :class:`Binding` objects of its live entries, which is what
    FieldEncryptor's common call looks up: :attr:`sealers` by scope and field,
    :attr:`openers` by the first 40 characters of a token (the text of its header and key
    commitment). The index only holds bindings of entries that are not evicted
    (registration and eviction both run under the lock), so a key leaving the cache (a
    shred, a rotation, a retirement, a change seen in the vault's log, the size bound)
    leaves the index too. A binding is valid until its key's age limit or the vault's next
    revalidation, whichever comes first (``valid_until``); after that its next use takes
    the vault's path, which revalidates and indexes it again.

    ``next_check`` (monotonic seconds) is when the vault next polls its change log.
    """

    def __init__(self, policy: CachePolicy, clock: Callable[[], float]) -> None:
        self._policy = policy
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self.sealers: dict[tuple[str, str | None, str], Binding] = {}
        """Bindings by ``(tenant, subject, field)``, of each scope's active key (read-only)."""
        self.openers: dict[str, Binding] = {}
        """Bindings by their 40-character :attr:`Binding.text` (read-only)."""
        self.max_uses = policy.max_uses
        self._max_age = policy.max_age
        self._stale_limit = policy.max_age + policy.stale_grace
        self.next_check = clock() + policy.revalidate_interval

    # The cache policy: an entry is usable while younger than max_age (or, with stale_ok,
    # max_age + stale_grace) and used fewer than max_uses times; each use counts. For the
    # index, _index() turns the age limit and the revalidation deadline into one
    # ``valid_until`` per binding; the reader compares ``now < valid_until`` and
    # ``uses < max_uses`` and counts the use. Lock-free on purpose (the hot path): under
    # concurrent use ``uses`` may undercount by a few, so max_uses is approximate by at
    # most the number of threads.

    def get(self, key: Hashable, now: float, *, stale_ok: bool = False) -> Entry | None:
        """A usable entry (counting one use), or ``None``. ``stale_ok`` allows the grace."""
        entry = self._entries.get(key)
        if (
            entry is None
            or now - entry.loaded_at >= (self._stale_limit if stale_ok else self._max_age)
            or entry.uses >= self.max_uses
        ):
            return None
        entry.uses += 1
        return entry

    def index_sealer(self, binding: Binding) -> None:
        """Index ``binding`` in :attr:`sealers` (its entry must be its scope's active key)."""
        self._index(self.sealers, binding.sealer_key, binding)

    def index_opener(self, binding: Binding) -> None:
        """Index ``binding`` in :attr:`openers`."""
        self._index(self.openers, binding.text, binding)

    def _index(self, index: dict[Any, Binding], key: Hashable, binding: Binding) -> None:
        entry = binding.entry
        if entry.bindings.get(binding.field) is not binding:
            return  # past the per-entry bound: eviction could not find it again
        with self._lock:
            if entry.evicted:
                return
            if len(index) >= _MAX_INDEXED:
                index.clear()
            binding.valid_until = min(entry.loaded_at + self._max_age, self.next_check)
            index[key] = binding

    def _release(self, entry: Entry) -> None:
        # Under self._lock: one cache key less holds ``entry``.
        entry.refs -= 1
        if entry.refs <= 0:
            self._drop(entry)

    def _drop(self, entry: Entry) -> None:
        # Under self._lock: ``entry`` leaves the cache, and its bindings the index.
        entry.evicted = True
        for binding in list(entry.bindings.values()):  # bind() may add one concurrently
            if self.sealers.get(binding.sealer_key) is binding:
                del self.sealers[binding.sealer_key]
            if self.openers.get(binding.text) is binding:
                del self.openers[binding.text]
        # Entry and bindings refer to each other: break the cycle so the derived keys are
        # freed as soon as the last call using them returns, not at some later collection.
        entry.bindings.clear()

    def put(self, key: Hashable, entry: Entry) -> None:
        """Insert ``entry``, dropping the oldest loaded beyond ``max_entries``."""
        with self._lock:
            entry.refs += 1
            old = self._entries.pop(key, None)
            if old is not None:
                self._release(old)
            self._entries[key] = entry
            while len(self._entries) > self._policy.max_entries:
                self._release(self._entries.popitem(last=False)[1])

    def evict(self, dek_ids: set[bytes]) -> None:
        """Drop every entry of these keyrings."""
        with self._lock:
            for key in [k for k, e in self._entries.items() if e.keyring.dek_id in dek_ids]:
                self._release(self._entries.pop(key))

    def clear(self) -> None:
        """Drop everything."""
        with self._lock:
            for entry in self._entries.values():
                self._drop(entry)
            self._entries.clear()
            self.sealers.clear()
            self.openers.clear()

    def __len__(self) -> int:
        return len(self._entries)


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
