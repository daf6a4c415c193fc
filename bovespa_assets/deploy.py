"""Build and upload what ``infra/template.yaml`` deploys: the trigger Lambda's zip, the two Glue scripts, and
the package both scripts import.

    python -m bovespa_assets.deploy package --bucket ARTIFACTS_BUCKET     (or: make package BUCKET=...)
    python -m bovespa_assets.deploy env --stack STACK                     (the Dagster settings, from the outputs)

Every artifact's key carries a digest of its content (``lambda/raw-trigger-<sha>.zip``,
``glue/refine_job-<sha>.py``, ``glue/prices_job-<sha>.py``, ``glue/bovespa_assets-<sha>.zip``), so a code
change is a parameter change that CloudFormation applies, an unchanged build uploads nothing, and the previous
keys stay for a rollback.
The zips are reproducible (sorted entries, fixed timestamps). The command prints the template parameters
and writes them to ``build/parameters.txt`` for ``aws cloudformation deploy --parameter-overrides``.

- Lambda zip: ``lambda_handler.py`` at the root (handler ``lambda_handler.handler``) plus boto3 with its
  dependencies, copied from this environment (the project's exact pins). The handler's claims need S3
  conditional writes (``IfNoneMatch``), which the boto3 a Lambda runtime ships may predate; bundling the
  pinned SDK removes that doubt, as AWS recommends for production functions.
- Glue: each script file, and the ``bovespa_assets`` Python sources as a zip for ``--extra-py-files``
  (pyarrow comes from ``--additional-python-modules``, set in the template).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import re
import shlex
import sys
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent
HANDLER_MODULE = PACKAGE_DIR / "lambda_handler.py"
GLUE_SCRIPT = PACKAGE_DIR / "glue" / "refine_job.py"
GLUE_PRICES_SCRIPT = PACKAGE_DIR / "glue" / "prices_job.py"
LAMBDA_HANDLER = "lambda_handler.handler"
LAMBDA_SDK = "boto3"  # bundled with its dependency closure
LAMBDA_KEY = "lambda/raw-trigger-{digest}.zip"
GLUE_SCRIPT_KEY = "glue/refine_job-{digest}.py"
GLUE_PRICES_SCRIPT_KEY = "glue/prices_job-{digest}.py"
GLUE_PACKAGE_KEY = "glue/bovespa_assets-{digest}.zip"
# infra/template.yaml's outputs → the environment variables Dagster reads on the aws target (settings.py)
OUTPUT_ENV = {
    "LakeUri": "BOVESPA_LAKE",
    "GlueJobName": "BOVESPA_GLUE_JOB_NAME",
    "GluePricesJobName": "BOVESPA_GLUE_PRICES_JOB_NAME",
    "AthenaWorkGroupName": "BOVESPA_ATHENA_WORKGROUP",
    "AthenaOutputLocation": "BOVESPA_ATHENA_OUTPUT",
    "Region": "AWS_REGION",
}
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True)
class Artifact:
    key: str
    body: bytes
    content_type: str


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:16]


def _zip(entries: Iterable[tuple[str, bytes]]) -> bytes:
    """A reproducible zip: sorted names, one fixed timestamp, fixed permissions."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name, body in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, body)
    return buffer.getvalue()


def _dependency_closure(name: str) -> list[metadata.Distribution]:
    """``name`` and everything it requires (no extras), as installed here."""
    seen: dict[str, metadata.Distribution] = {}
    todo = [name]
    while todo:
        wanted = todo.pop()
        distribution = metadata.distribution(wanted)
        key = distribution.metadata["Name"].lower().replace("_", "-")
        if key in seen:
            continue
        seen[key] = distribution
        for requirement in distribution.requires or []:
            if "extra ==" in requirement:
                continue
            marker = requirement.split(";", 1)[1] if ";" in requirement else ""
            if marker and not _marker_applies(marker):
                continue
            match = _REQUIREMENT_NAME.match(requirement)
            if match:
                todo.append(match.group(1))
    return [seen[k] for k in sorted(seen)]


def _marker_applies(marker: str) -> bool:
    from packaging.markers import Marker

    return Marker(marker).evaluate()


def _distribution_files(distribution: metadata.Distribution) -> list[tuple[str, bytes]]:
    """The importable files of an installed distribution (its modules and data, not its scripts or caches)."""
    entries = []
    for file in distribution.files or []:
        name = str(file)
        if name.startswith("..") or "__pycache__" in name or name.endswith((".pyc", "RECORD", "INSTALLER")):
            continue
        path = Path(str(distribution.locate_file(file)))
        if path.is_file():
            entries.append((name, path.read_bytes()))
    return entries


def lambda_zip() -> bytes:
    entries = [("lambda_handler.py", HANDLER_MODULE.read_bytes())]
    for distribution in _dependency_closure(LAMBDA_SDK):
        entries.extend(_distribution_files(distribution))
    return _zip(entries)


def glue_package_zip() -> bytes:
    """The package's Python sources under ``bovespa_assets/`` (no data files, no caches)."""
    root = PACKAGE_DIR.parent
    entries = [
        (path.relative_to(root).as_posix(), path.read_bytes())
        for path in sorted(PACKAGE_DIR.rglob("*.py"))
        if "__pycache__" not in path.parts
    ]
    return _zip(entries)


def build() -> dict[str, Artifact]:
    """The four artifacts by template parameter name, keys derived from their content."""
    script = GLUE_SCRIPT.read_bytes()
    prices_script = GLUE_PRICES_SCRIPT.read_bytes()
    package = glue_package_zip()
    handler = lambda_zip()
    return {
        "LambdaCodeKey": Artifact(LAMBDA_KEY.format(digest=_digest(handler)), handler, "application/zip"),
        "GlueScriptKey": Artifact(GLUE_SCRIPT_KEY.format(digest=_digest(script)), script, "text/x-python"),
        "GluePricesScriptKey": Artifact(GLUE_PRICES_SCRIPT_KEY.format(digest=_digest(prices_script)), prices_script,
                                        "text/x-python"),
        "GluePackageKey": Artifact(GLUE_PACKAGE_KEY.format(digest=_digest(package)), package, "application/zip"),
    }


def _exists(s3: Any, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def upload(artifacts: dict[str, Artifact], bucket: str, s3: Any = None) -> dict[str, str]:
    """Put each artifact not yet in ``bucket``; returns the template parameters (ArtifactsBucket and keys)."""
    if s3 is None:
        import boto3

        s3 = boto3.client("s3")  # standard credential chain; AWS_ENDPOINT_URL_S3 overrides the endpoint
    for artifact in artifacts.values():
        if not _exists(s3, bucket, artifact.key):
            s3.put_object(Bucket=bucket, Key=artifact.key, Body=artifact.body, ContentType=artifact.content_type)
    return {"ArtifactsBucket": bucket, **{name: artifact.key for name, artifact in artifacts.items()}}


def package(bucket: str, out_dir: Path = Path("build"), s3: Any = None) -> dict[str, str]:
    """Build, upload, and write ``out_dir/parameters.txt`` (``Name=value`` lines); returns the parameters."""
    artifacts = build()
    out_dir.mkdir(parents=True, exist_ok=True)
    for artifact in artifacts.values():
        (out_dir / Path(artifact.key).name).write_bytes(artifact.body)
    parameters = upload(artifacts, bucket, s3)
    (out_dir / "parameters.txt").write_text("".join(f"{k}={v}\n" for k, v in parameters.items()), encoding="utf-8")
    return parameters


def env_from_outputs(outputs: dict[str, str]) -> dict[str, str]:
    """The settings that point Dagster at a deployed stack: BOVESPA_TARGET=aws plus one variable per output."""
    missing = sorted(set(OUTPUT_ENV) - set(outputs))
    if missing:
        raise ValueError(f"stack outputs {', '.join(missing)} are missing: is this a bovespa-assets stack?")
    return {"BOVESPA_TARGET": "aws", **{variable: outputs[name] for name, variable in OUTPUT_ENV.items()}}


def stack_outputs(stack: str, cloudformation: Any = None) -> dict[str, str]:
    if cloudformation is None:
        import boto3

        cloudformation = boto3.client("cloudformation")
    [description] = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bovespa_assets.deploy", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_upload = commands.add_parser("package", help="build the artifacts and upload them to the artifacts bucket")
    build_upload.add_argument("--bucket", required=True, help="the artifacts bucket (infra/artifacts.yaml's output)")
    build_upload.add_argument("--out", default="build", help="where the built files and parameters.txt go")
    show_env = commands.add_parser("env", help="print the export lines that point Dagster at a deployed stack")
    show_env.add_argument("--stack", required=True, help="the stack name template.yaml was deployed as")
    args = parser.parse_args(argv)
    if args.command == "env":
        for name, value in env_from_outputs(stack_outputs(args.stack)).items():
            print(f"export {name}={shlex.quote(value)}")
        return 0
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", args.bucket or ""):
        parser.error(f"--bucket {args.bucket!r}: not an S3 bucket name (make package BUCKET=<artifacts bucket>)")
    parameters = package(args.bucket, Path(args.out))
    for name, value in parameters.items():
        print(f"{name}={value}")
    print(f"written to {Path(args.out) / 'parameters.txt'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
