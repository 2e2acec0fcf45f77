"""Named registries behind the ``llmos_register_*`` hooks: one owner per name."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


class RegistrationError(Exception):
    """A plugin registered something invalid or under a name another plugin owns."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    value: T
    plugin: str
    description: str = ""


class NamedRegistry(Generic[T]):
    """Things registered by name. ``kind`` words the errors ("memory backend")."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def add(self, name: str, value: T, plugin: str, description: str = "") -> None:
        if not isinstance(name, str) or not name:
            raise RegistrationError(f"plugin {plugin!r} registered a {self.kind} with no name")
        existing = self._entries.get(name)
        if existing is not None:
            raise RegistrationError(
                f"{self.kind} {name!r} is registered by both plugin {existing.plugin!r} "
                f"and plugin {plugin!r}"
            )
        self._entries[name] = Entry(name, value, plugin, description)

    def remove_plugin(self, plugin: str) -> None:
        """Forget every entry a plugin registered (the plugin failed and is isolated)."""
        self._entries = {n: e for n, e in self._entries.items() if e.plugin != plugin}

    def get(self, name: str) -> Entry[T] | None:
        return self._entries.get(name)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries[name] for name in self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries
