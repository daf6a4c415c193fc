from __future__ import annotations

from dagster import ConfigurableResource

from ..lake import Lake


class LakeResource(ConfigurableResource):
    """The lake root: a local folder or s3://bucket[/prefix] (endpoint override for moto/MinIO)."""

    uri: str
    s3_endpoint_url: str | None = None

    def lake(self) -> Lake:
        return Lake(self.uri, s3_endpoint_url=self.s3_endpoint_url)
