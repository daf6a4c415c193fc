"""Where the refine job runs and where its tables are registered: Glue on AWS, stand-ins locally.

Both variants hand out objects with boto3's Glue method names and shapes (`start_job_run`,
`get_job_runs`, `get_partitions`, ...), so the Lambda handler, the sensors and the job itself never
ask which target they are on.
"""

from pathlib import Path
from typing import Any

from dagster import ConfigurableResource

from ..refine.tables import CARTEIRA_JOB, DATABASE, PRICES_JOB, RefineJob

JOB_NAME = "bovespa-refine-carteira"
PRICES_JOB_NAME = "bovespa-refine-cotacoes"
JOB_MODULE = CARTEIRA_JOB.module


class RefineResource(ConfigurableResource):
    job_name: str = JOB_NAME  # the portfolio job
    prices_job_name: str = PRICES_JOB_NAME
    database: str = DATABASE

    def job_names(self) -> dict[str, RefineJob]:
        """Glue job name → what it refines (raw prefix, script, tables)."""
        return {self.job_name: CARTEIRA_JOB, self.prices_job_name: PRICES_JOB}

    def routes(self) -> dict[str, str]:
        """Raw prefix → the job its new objects start (what the Lambda handler is configured with)."""
        return {job.raw_prefix: name for name, job in self.job_names().items()}

    def refine_job(self, job_name: str) -> RefineJob:
        return self.job_names()[job_name]

    def jobs(self) -> Any:
        raise NotImplementedError

    def catalog(self) -> Any:
        raise NotImplementedError

    def ledger(self) -> Any:
        """Claims of delivered raw objects (duplicate deliveries start no second run)."""
        raise NotImplementedError

    def console_url(self, run_id: str, job_name: str | None = None) -> str | None:
        return None


class LocalRefineResource(RefineResource):
    """The same Glue script on local Spark in background processes; a catalog in one SQLite file."""

    home: str
    lake_uri: str
    max_concurrent_runs: int = 4

    @property
    def catalog_path(self) -> Path:
        return Path(self.home) / "catalog" / "glue_catalog.sqlite"

    def jobs(self) -> Any:
        from ..local.glue_jobs import LocalGlueJobs, LocalJobDefinition

        arguments = {
            "--lake_uri": self.lake_uri,
            "--database": self.database,
            "--catalog": "local",
            "--catalog_path": str(self.catalog_path),
        }
        definitions = {name: LocalJobDefinition(module=job.module, default_arguments=arguments)
                       for name, job in self.job_names().items()}
        return LocalGlueJobs(Path(self.home) / "glue", definitions, self.max_concurrent_runs)

    def catalog(self) -> Any:
        from ..local.glue_catalog import LocalGlueCatalog

        return LocalGlueCatalog(self.catalog_path)

    def ledger(self) -> Any:
        from ..lambda_handler import FolderLedger

        return FolderLedger(Path(self.home) / "events" / "claims")


class AwsRefineResource(RefineResource):
    """AWS Glue: job runs and the Data Catalog through boto3 (standard AWS credential chain)."""

    region_name: str | None = None

    def _glue(self) -> Any:
        import boto3

        return boto3.client("glue", region_name=self.region_name)

    def jobs(self) -> Any:
        return self._glue()

    def catalog(self) -> Any:
        return self._glue()

    def ledger(self) -> Any:
        return None  # on AWS the S3 notification and the Lambda deliver events, with their own ledger

    def console_url(self, run_id: str, job_name: str | None = None) -> str | None:
        region = self.region_name or self._glue().meta.region_name
        return (f"https://{region}.console.aws.amazon.com/gluestudio/home?region={region}"
                f"#/job/{job_name or self.job_name}/run/{run_id}")
