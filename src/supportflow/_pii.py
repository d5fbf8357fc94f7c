"""Personal fields, sealed with a per-requester key (crypto-shredding).

Every personal field of a ticket (the requester's and CC'd addresses, the customer's name
where one is given, every message body, solution, reason, note and comment) is stored as a
*sealed token*: AES-256-GCM under the key of the ticket's requester, kept in the store's key
table. Destroying that key (`SupportDesk.forget_requester`) leaves the tokens in place, so
every event still replays and the hash chain, computed over the stored tokens, still verifies,
but nothing can read them any more: they read as `ERASED`.

An address token also carries a *blind index*: an HMAC of the normalised address under the
same key, so "is this sender the requester, or on the CC list?" is answered without
decrypting, and the auditor can check it from the log. Once the key is gone the blind index
is as meaningless as the ciphertext.

A token starts with a control character (``\\x1e``) that no command accepts in its input,
so a stored value is a token exactly when it starts with `PREFIX`; anything else is a plain
value from before sealing existed and reads as itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
import time
from collections.abc import Callable
from typing import NamedTuple, Protocol
from uuid import UUID, uuid4

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .policy import normalize_address

__all__ = [
    "ERASED",
    "PREFIX",
    "KeyRing",
    "KeyStore",
    "Token",
    "blind_index",
    "is_sealed",
    "key_id_of",
    "lookup_for",
    "parse",
    "seal",
    "unseal",
]

PREFIX = "\x1esf1:"
"""How every sealed value starts (version 1 of the token format)."""

ERASED = "[erased]"
"""What a personal field reads as once its requester's key is destroyed."""

_NONCE = 12
_BLIND = 32  # hex characters of the blind index (128 bits)


class Token(NamedTuple):
    """A parsed sealed value."""

    key_id: UUID
    blind: str
    """The blind index of an address ('' for other fields)."""
    payload: bytes
    """Nonce followed by the AES-GCM ciphertext and tag."""


def is_sealed(value: object) -> bool:
    """Whether `value` is a sealed token (rather than a plain value)."""
    return isinstance(value, str) and value.startswith(PREFIX)


def parse(value: str) -> Token | None:
    """The parts of a sealed token, or None for a plain value or a malformed token."""
    if not value.startswith(PREFIX):
        return None
    try:
        key_hex, blind, payload = value[len(PREFIX) :].split(":", 2)
        return Token(UUID(hex=key_hex), blind, base64.urlsafe_b64decode(payload))
    except ValueError:
        return None


def key_id_of(value: object) -> UUID | None:
    """The id of the key a sealed value is sealed with (None for a plain value)."""
    token = parse(value) if isinstance(value, str) else None
    return None if token is None else token.key_id


def blind_index(key: bytes, address: str) -> str:
    """The blind index of `address` under `key` (its normalised form, HMAC-SHA-256)."""
    mac = hmac.new(key, normalize_address(address).encode(), hashlib.sha256)
    return mac.hexdigest()[:_BLIND]


def seal(text: str, *, key_id: UUID, key: bytes, address: bool = False) -> str:
    """`text` sealed under `key`; an `address` also gets its blind index."""
    nonce = os.urandom(_NONCE)
    sealed = AESGCM(key).encrypt(nonce, text.encode(), key_id.bytes)
    blind = blind_index(key, text) if address else ""
    payload = base64.urlsafe_b64encode(nonce + sealed).decode()
    return f"{PREFIX}{key_id.hex}:{blind}:{payload}"


def unseal(token: Token, key: bytes) -> str | None:
    """The text of `token`, or None if `key` does not open it."""
    try:
        plain = AESGCM(key).decrypt(
            token.payload[:_NONCE], token.payload[_NONCE:], token.key_id.bytes
        )
    except (InvalidTag, ValueError):
        return None
    return plain.decode()


def lookup_for(address: str) -> str:
    """The key table's lookup for a requester's address (a digest of its normalised form).
    It lives only in the key's own row, and is deleted with it."""
    return hashlib.sha256(b"supportflow-key:" + normalize_address(address).encode()).hexdigest()


class KeyStore(Protocol):
    """The key table of a store (see `supportflow._recorders.KeyTable`)."""

    def create_key(self, key_id: UUID, lookup: str, key: bytes) -> tuple[UUID, bytes]: ...

    def find_key(self, key_id: UUID) -> bytes | None: ...

    def key_for(self, lookup: str) -> tuple[UUID, bytes] | None: ...

    def destroy_key(self, key_id: UUID) -> bool: ...


_NIL = UUID(int=0)

CACHE_SECONDS = 5.0
"""How long a desk trusts a key it read: a key destroyed by another process reads as erased
here at most this long after."""


class KeyRing:
    """The keys one desk uses, read from (and created in) the store's key table, with a short
    cache."""

    def __init__(self, table: KeyStore, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._table = table
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[UUID, tuple[bytes, float]] = {}

    def _remember(self, key_id: UUID, key: bytes) -> None:
        with self._lock:
            self._keys[key_id] = (key, self._clock() + CACHE_SECONDS)

    def key(self, key_id: UUID) -> bytes | None:
        """The key `key_id`, or None once it is destroyed."""
        with self._lock:
            cached = self._keys.get(key_id)
        if cached is not None and cached[1] > self._clock():
            return cached[0]
        key = self._table.find_key(key_id)
        if key is None:
            with self._lock:
                self._keys.pop(key_id, None)
            return None
        self._remember(key_id, key)
        return key

    def key_for_address(self, address: str) -> tuple[UUID, bytes]:
        """The key of requester `address`, created on first use."""
        lookup = lookup_for(address)
        found = self._table.key_for(lookup)
        if found is None:
            found = self._table.create_key(uuid4(), lookup, AESGCM.generate_key(bit_length=256))
        self._remember(*found)
        return found

    def existing_key_for(self, address: str) -> tuple[UUID, bytes] | None:
        """The key of requester `address`, if there is one."""
        return self._table.key_for(lookup_for(address))

    def destroy(self, key_id: UUID) -> bool:
        """Destroy key `key_id` in the store (and here)."""
        with self._lock:
            self._keys.pop(key_id, None)
        return self._table.destroy_key(key_id)

    def scrub(self) -> None:
        """Finish wiping destroyed keys from the store's files (a destroy that was
        interrupted after its row was deleted)."""
        self._table.destroy_key(_NIL)

    def reveal(self, value: str) -> str:
        """A stored value as people read it: plain values as they are, tokens opened, and
        `ERASED` for a token whose key is gone."""
        token = parse(value)
        if token is None:
            return value
        key = self.key(token.key_id)
        if key is None:
            return ERASED
        text = unseal(token, key)
        return ERASED if text is None else text

    def is_address(self, value: str, address: str) -> bool:
        """Whether stored address `value` (a token or a plain value) is `address`, compared in
        normalised form; False once the key is gone (an erased requester is nobody)."""
        token = parse(value)
        if token is None:
            if value == ERASED:  # a field written after its key was destroyed: nobody
                return False
            try:
                return normalize_address(value) == normalize_address(address)
            except ValueError:
                return False
        key = self.key(token.key_id)
        if key is None or not token.blind:
            return False
        return hmac.compare_digest(token.blind, blind_index(key, address))
