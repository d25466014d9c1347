"""App visibility, as the contract numbers it (`resources_pb2.Visibility.Gettable`): the one
home of these values for the store, the caches, the seed and the command line."""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2

PRIVATE: int = resources_pb2.Visibility.PRIVATE  # 10
ORG: int = resources_pb2.Visibility.ORG  # 30: readable by the owning organization's members
PUBLIC: int = resources_pb2.Visibility.PUBLIC  # 50: readable by anyone's PAT
NAMES: dict[int, str] = {PRIVATE: "private", ORG: "org", PUBLIC: "public"}
