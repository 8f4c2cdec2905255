"""The cache of unwrapped data keys: bounded by age, uses and entries; single-flight loads.

Only :class:`~flowtrace.crypto._keys.DerivedKeys` are cached (never raw DEKs). Time comes
from an injectable monotonic clock so tests can drive expiry deterministically.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from os import urandom as _urandom
from typing import Any, Final, Generic, TypeVar

from ..errors import ConfigError, MalformedTokenError
from . import _token
from ._keys import DerivedKeys
from ._stores import KeyringRecord

__all__ = ["Binding", "CachePolicy", "Entry", "KeyCache", "SingleFlight"]

T = TypeVar("T")
_MAX_FIELDS: Final = 4096
_MAX_INDEXED: Final = 65536
_HEAD_SIZE: Final = _token.HEADER_SIZE + _token.COMMITMENT_SIZE
_BODY: Final = _HEAD_SIZE + _token.NONCE_SIZE
_MIN_RANDOMIZED: Final = _BODY + _token.TAG_SIZE
_NONCE_SIZE: Final = _token.NONCE_SIZE
_encode_text = _token.encode_text
_context_data = _token.context_data


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

    __slots__ = ("bindings", "evicted", "keyring", "keys", "loaded_at", "prefixes", "refs",
                 "uses", "version")

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
            if len(self.bindings) < _MAX_FIELDS:
                self.bindings[field] = binding
        return binding


class Binding:
    """What one cached key needs to seal and open randomized tokens of one field.

    Everything here is a pure function of the entry (tenant, DEK id and version, derived
    keys) and the field, computed once: the 30-byte head (header with flags 0, then the key
    commitment), its text form, and the associated data up to the caller's context.
    """

    __slots__ = ("_decrypt", "_encrypt", "aad", "aad_prefix", "entry", "field", "head",
                 "sealer_key", "tenant", "text")

    def __init__(self, entry: Entry, field: str) -> None:
        keyring = entry.keyring
        header = entry.prefixes[0] + entry.keys.field_tag(field)
        self.entry = entry
        self.field = field
        self.tenant = keyring.tenant
        self.head = header + entry.keys.commitment
        self.text = _token.encode_text(self.head)  # 30 bytes: exactly 40 characters
        self.aad_prefix = _token.aad_prefix(header, keyring.tenant, field)
        self.aad = self.aad_prefix + _token.context_data(None)
        self.sealer_key = (keyring.tenant, keyring.subject, field)
        self._encrypt = entry.keys.gcm.encrypt
        self._decrypt = entry.keys.gcm.decrypt

    def seal_text(self, payload: bytes, context: Mapping[str, str] | None) -> str:
        """The text token of ``payload`` under a fresh random nonce, bound to ``context``."""
        nonce = _urandom(_NONCE_SIZE)
        aad = self.aad if not context else self.aad_prefix + _context_data(context)
        # head || nonce || ciphertext; the head's text is precomputed (30 bytes, see
        # _token.encode_text on why the text forms concatenate).
        return self.text + _encode_text(nonce + self._encrypt(nonce, payload, aad))

    def open_raw(self, raw: bytes, context: Mapping[str, str] | None) -> bytes:
        """The plaintext of token bytes ``raw`` that start with :attr:`head`.

        Raises if ``raw`` is too short or fails authentication; the caller then lets the
        general path name the error.
        """
        if len(raw) < _MIN_RANDOMIZED:
            raise MalformedTokenError("token is truncated")
        aad = self.aad if not context else self.aad_prefix + _context_data(context)
        return self._decrypt(raw[_HEAD_SIZE:_BODY], raw[_BODY:], aad)


class KeyCache:
    """Map from a key (``(dek_id, version)`` or an active scope) to an :class:`Entry`.

    Beyond ``max_entries`` the entry loaded longest ago is dropped first. One entry may be
    held under two keys (a scope's active key is also its ``(dek_id, version)``); once no
    key holds it any more it is marked ``evicted``.

    The cache also indexes the :class:`Binding` objects of its live entries, which is what
    FieldEncryptor's common call looks up: ``sealer()`` by scope and field, ``opener()`` by
    a token's 30-byte head. The index only ever holds bindings of entries that are not
    evicted (registration and eviction both run under the lock), so dropping a key from
    the cache (a shred, a rotation, a retirement) removes it from the index too.

    ``revalidate`` is called whenever a lookup finds ``next_check`` (monotonic seconds,
    kept by the vault) has passed: the vault polls its change log and evicts.
    """

    def __init__(
        self, policy: CachePolicy, clock: Callable[[], float], revalidate: Callable[[], None]
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._revalidate = revalidate
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self._sealers: dict[tuple[str, str | None, str], Binding] = {}
        self._openers: dict[bytes, Binding] = {}
        self._max_age = policy.max_age
        self._max_uses = policy.max_uses
        self._stale_limit = policy.max_age + policy.stale_grace
        self.next_check = clock() + policy.revalidate_interval

    # The cache policy, in one place: an entry is usable while younger than max_age (or,
    # with stale_ok, max_age + stale_grace) and used fewer than max_uses times; each use
    # counts. Lock-free on purpose (the hot path): under concurrent use ``uses`` may
    # undercount by a few, so max_uses is approximate by at most the number of threads.

    def get(self, key: Hashable, now: float, *, stale_ok: bool = False) -> Entry | None:
        """A usable entry (counting one use), or ``None``. ``stale_ok`` allows the grace."""
        entry = self._entries.get(key)
        if (
            entry is None
            or now - entry.loaded_at >= (self._stale_limit if stale_ok else self._max_age)
            or entry.uses >= self._max_uses
        ):
            return None
        entry.uses += 1
        return entry

    def sealer(self, key: tuple[str, str | None, str]) -> Binding | None:
        """The binding to encrypt ``key = (tenant, subject, field)`` with the scope's
        active key, if indexed and usable now (counting one use), else ``None``."""
        binding = self._sealers.get(key)
        if binding is None:
            return None
        now = self._clock()
        if now >= self.next_check:
            self._revalidate()
            binding = self._sealers.get(key)
            if binding is None:
                return None
        entry = binding.entry
        if now - entry.loaded_at >= self._max_age or entry.uses >= self._max_uses:
            return None
        entry.uses += 1
        return binding

    def opener(self, head: bytes, tenant: str | None, field: str) -> Binding | None:
        """The binding of a token whose first 30 bytes are ``head``, if indexed, of this
        tenant and field, and usable now (counting one use), else ``None``."""
        binding = self._openers.get(head)
        if binding is None or binding.tenant != tenant or binding.field != field:
            return None
        now = self._clock()
        if now >= self.next_check:
            self._revalidate()
            if self._openers.get(head) is not binding:
                return None
        entry = binding.entry
        if now - entry.loaded_at >= self._max_age or entry.uses >= self._max_uses:
            return None
        entry.uses += 1
        return binding

    def index_sealer(self, binding: Binding) -> None:
        """Index ``binding`` for :meth:`sealer` (its entry must be the scope's active key)."""
        self._index(self._sealers, binding.sealer_key, binding)

    def index_opener(self, binding: Binding) -> None:
        """Index ``binding`` for :meth:`opener`."""
        self._index(self._openers, binding.head, binding)

    def _index(self, index: dict[Any, Binding], key: Hashable, binding: Binding) -> None:
        entry = binding.entry
        if entry.bindings.get(binding.field) is not binding:
            return  # past the per-entry bound: eviction could not find it again
        with self._lock:
            if entry.evicted:
                return
            if len(index) >= _MAX_INDEXED:
                index.clear()
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
            if self._sealers.get(binding.sealer_key) is binding:
                del self._sealers[binding.sealer_key]
            if self._openers.get(binding.head) is binding:
                del self._openers[binding.head]

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
            self._sealers.clear()
            self._openers.clear()

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
