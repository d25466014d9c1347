"""Caches whose database read waits until the test says go on, so that an eviction can be
made to land between the read and its result being used."""

from __future__ import annotations

import threading

from scopegate.access.authentication import Authenticator
from scopegate.access.relations import RelationResolver


class _Held:
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reading = threading.Event()
        self.go_on = threading.Event()

    def _read(self, result):
        self.reading.set()
        self.go_on.wait(10)
        return result


class HeldAuthenticator(_Held, Authenticator):
    def _load_sync(self, *args):
        return self._read(super()._load_sync(*args))


class HeldRelations(_Held, RelationResolver):
    def _load(self, *args):
        return self._read(super()._load(*args))
