"""`PolicyRegistry`: the policy versions a store's tickets may run under."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..policy import SupportPolicy

__all__ = ["PolicyRegistry"]


class PolicyRegistry:
    """Policies by version. Built from the `PolicyRecord`s a store holds (every policy a desk
    adopted), plus any the caller passes; `get` of an unknown version is None.

    >>> registry = PolicyRegistry([SupportPolicy()])
    >>> SupportPolicy().version in registry
    True
    """

    def __init__(self, policies: Iterable[SupportPolicy] = ()) -> None:
        self._policies: dict[str, SupportPolicy] = {}
        self.problems: list[str] = []
        """Stored policy records that could not be used, one sentence each."""
        for policy in policies:
            self.add(policy)

    def add(self, policy: SupportPolicy) -> None:
        """Make `policy` known under its version."""
        if not isinstance(policy, SupportPolicy):
            raise TypeError(f"expected a SupportPolicy, got {type(policy).__name__}")
        self._policies.setdefault(policy.version, policy)

    def add_record(self, version: str, data: Mapping[str, Any]) -> bool:
        """Add a stored policy record; returns False (and notes a problem) when its content
        cannot be read or does not fingerprint to `version`."""
        try:
            policy = SupportPolicy.from_dict(data)
        except (KeyError, TypeError, ValueError) as error:
            self.problems.append(f"the stored policy {version!r} cannot be read: {error}")
            return False
        if policy.version != version:
            self.problems.append(
                f"the stored policy {version!r} has content whose version is "
                f"{policy.version!r}: the record was changed"
            )
            return False
        self.add(policy)
        return True

    def get(self, version: str) -> SupportPolicy | None:
        return self._policies.get(version)

    def __contains__(self, version: object) -> bool:
        return version in self._policies

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._policies))

    def __len__(self) -> int:
        return len(self._policies)

    def __repr__(self) -> str:
        return f"PolicyRegistry({sorted(self._policies)!r})"
