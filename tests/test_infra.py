"""infra/template.yaml is wired to the code it deploys: parsed here (cfn-lint and checkov, run by `make infra-check`,
validate it against AWS's schemas and security rules), then its names, prefixes and keys are held against the
handler, the Glue script, the packaging command and the settings, partly by running them against moto.
"""

import ast
import io
import json
import os
import subprocess
import sys
import tomllib
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfn_template import ACCOUNT, REGION, ROOT, TEMPLATES, Resolver, load
from lambda_events import raw_key, s3_event, s3_record, sqs_event
from moto import mock_aws

from bovespa_assets import deploy, lambda_handler
from bovespa_assets.glue import prices_job, refine_job
from bovespa_assets.lake import PARTITION_FILE, RAW_CARTEIRA, RAW_COTACOES, partition_dir, price_partition_dir
from bovespa_assets.refine.tables import CARTEIRA_JOB, DATABASE, PRICES_JOB
from bovespa_assets.settings import ConfigError, Settings

# Lambda's Python runtimes not deprecated (AWS Lambda Developer Guide, "Building Lambda functions with Python").
SUPPORTED_LAMBDA_PYTHON = {"python3.12", "python3.13", "python3.14"}
# template Glue job → its script, the parameter packaging writes for the script's key, the raw dataset it reads
GLUE_JOBS = {
    "RefineJob": (refine_job, "GlueScriptKey", RAW_CARTEIRA),
    "PricesJob": (prices_job, "GluePricesScriptKey", RAW_COTACOES),
}
ARTIFACT_PARAMETERS = ("LambdaCodeKey", "GlueScriptKey", "GluePricesScriptKey", "GluePackageKey")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load("template")


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: spec for name, spec in template["Resources"].items() if spec["Type"] == kind}


def handler_env_names() -> set[str]:
    """The environment variables lambda_handler.handler reads (os.environ.get("...") calls)."""
    tree = ast.parse(Path(lambda_handler.__file__).read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                and ast.unparse(node.func.value) == "os.environ" and isinstance(node.args[0], ast.Constant)):
            names.add(node.args[0].value)
    return names


# ------------------------------------------------------------------------------------------ event path


def test_raw_parquet_objects_reach_the_lambda_through_the_queue(template):
    resolve = Resolver(template, {}).resolve
    resources = template["Resources"]
    [notification] = resources["LakeBucket"]["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    rules = {rule["Name"]: resolve(rule["Value"]) for rule in notification["Filter"]["S3Key"]["Rules"]}
    assert notification["Event"] == "s3:ObjectCreated:*"
    assert rules == {"prefix": "raw/", "suffix": ".parquet"}
    # the keys the raw assets write (at the lake root, which is what BOVESPA_LAKE=LakeUri names) match the filter:
    # portfolios and prices alike
    for written in (f"{partition_dir(RAW_CARTEIRA, 'IBOV', date(2025, 2, 3))}/{PARTITION_FILE}",
                    f"{price_partition_dir('BVSP', date(2025, 2, 3))}/{PARTITION_FILE}"):
        assert written.startswith(rules["prefix"]) and written.endswith(rules["suffix"]), written
    assert resolve(template["Outputs"]["LakeUri"]["Value"]) == f"s3://{resolve({'Ref': 'LakeBucket'})}"

    assert notification["Queue"] == {"Fn::GetAtt": ["RawEventsQueue", "Arn"]}
    mapping = resources["TriggerEventSource"]["Properties"]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["RawEventsQueue", "Arn"]}
    assert mapping["FunctionName"] == {"Ref": "TriggerFunction"}
    assert int(resolve(mapping["BatchSize"])) == Settings.from_env({}).refine_sessions_per_run  # one run per batch
    redrive = resources["RawEventsQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["RawEventsDeadLetterQueue", "Arn"]}
    function = resources["TriggerFunction"]["Properties"]
    assert resources["RawEventsQueue"]["Properties"]["VisibilityTimeout"] >= 6 * function["Timeout"]

    # S3 may send to the queue from this bucket only; the bucket waits for that permission before notifying
    [statement] = resources["RawEventsQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    assert resolve(statement["Condition"]["ArnEquals"]["aws:SourceArn"]) == resolve(
        {"Fn::GetAtt": ["LakeBucket", "Arn"]})
    assert resources["LakeBucket"]["DependsOn"] == "RawEventsQueuePolicy"


def test_the_lambda_environment_names_the_glue_jobs_and_starts_them(template, monkeypatch):
    """The template's Lambda environment, given to the real entry point, starts the template's Glue jobs (moto):
    the prices job for a raw/cotacoes/ object, the refine job for a raw/carteira/ one."""
    resolver = Resolver(template, {})
    function = template["Resources"]["TriggerFunction"]["Properties"]
    variables = function["Environment"]["Variables"]
    assert variables["GLUE_JOB_NAME"] == {"Ref": "RefineJob"}
    assert variables["GLUE_PRICES_JOB_NAME"] == {"Ref": "PricesJob"}
    assert set(variables) <= handler_env_names() | {"LOG_LEVEL"}
    assert function["Handler"] == deploy.LAMBDA_HANDLER and function["Runtime"] in SUPPORTED_LAMBDA_PYTHON
    env = {name: resolver.resolve(value) for name, value in variables.items()}
    assert env["RAW_PREFIX"] == lambda_handler.DEFAULT_RAW_PREFIX == CARTEIRA_JOB.raw_prefix
    assert env["PRICES_RAW_PREFIX"] == lambda_handler.DEFAULT_PRICES_RAW_PREFIX == PRICES_JOB.raw_prefix
    assert env["LEDGER_PREFIX"] == lambda_handler.DEFAULT_LEDGER_PREFIX
    # the Lambda's role may start these two jobs and no other
    [policy] = template["Resources"]["TriggerRole"]["Properties"]["Policies"]
    starts = [s for s in policy["PolicyDocument"]["Statement"] if "glue:StartJobRun" in as_list(s["Action"])]
    assert [as_list(s["Action"]) for s in starts] == [["glue:StartJobRun"]]
    assert sorted(as_list(resolver.resolve(starts[0]["Resource"]))) == sorted(
        f"arn:aws:glue:{REGION}:{ACCOUNT}:job/{resolver.ref(job)}" for job in GLUE_JOBS)

    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_GLUE", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {**env, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(lambda_handler, "_CLIENTS", {})
    with mock_aws():
        glue, s3 = boto3.client("glue", region_name=REGION), boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=env["RAW_BUCKET"])
        for name, (_script, _key, _raw) in GLUE_JOBS.items():
            job = template["Resources"][name]["Properties"]
            glue.create_job(Name=resolver.ref(name), Role=f"arn:aws:iam::{ACCOUNT}:role/refine",
                            Command={"Name": "glueetl", "ScriptLocation": "s3://artifacts/glue/job.py"},
                            GlueVersion=job["GlueVersion"])

        def runs(job_name: str) -> list[dict[str, Any]]:
            return glue.get_job_runs(JobName=job_name)["JobRuns"]

        price_object = f"{price_partition_dir('BVSP', date(2025, 2, 4))}/{PARTITION_FILE}"
        result = lambda_handler.handler(sqs_event(s3_event(s3_record(price_object, bucket=env["RAW_BUCKET"]))), None)
        [prices_run] = runs(env["GLUE_PRICES_JOB_NAME"])
        assert runs(env["GLUE_JOB_NAME"]) == [] and result["ignored"] == []
        assert result["runs"] == [{"job_name": resolver.ref("PricesJob"), "job_run_id": prices_run["Id"],
                                   "sessions": ["2025-02-04"]}]
        assert prices_run["Arguments"]["--sessions"] == "2025-02-04"

        carteira_object = raw_key("IBOV", "2025-02-03", lake_prefix="")
        result = lambda_handler.handler(sqs_event(s3_event(s3_record(carteira_object, bucket=env["RAW_BUCKET"]))), None)
        [run] = runs(env["GLUE_JOB_NAME"])
        assert len(runs(env["GLUE_PRICES_JOB_NAME"])) == 1 and result["ignored"] == []
        assert result["job_run_id"] == run["Id"] and run["Arguments"]["--sessions"] == "2025-02-03"
        assert [r["job_name"] for r in result["runs"]] == [resolver.ref("RefineJob")]
        claims = s3.list_objects_v2(Bucket=env["RAW_BUCKET"], Prefix=env["LEDGER_PREFIX"])["Contents"]
        assert len(claims) == 2 and all(c["Key"].startswith(env["LEDGER_PREFIX"]) for c in claims)


def test_stale_claims_expire_and_query_results_expire(template):
    rules = template["Resources"]["LakeBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    [claims] = [r for r in rules if r.get("Prefix") == lambda_handler.DEFAULT_LEDGER_PREFIX]
    assert claims["Status"] == "Enabled" and claims["ExpirationInDays"] == {"Ref": "ClaimsRetentionDays"}
    assert template["Parameters"]["ClaimsRetentionDays"]["MinValue"] > 14  # SQS keeps a message 14 days at most
    [results] = template["Resources"]["AthenaResultsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert results["ExpirationInDays"] == {"Ref": "AthenaResultsRetentionDays"}


# ------------------------------------------------------------------------------------------ Glue job and packaging


def test_the_glue_job_runs_what_packaging_uploads(template, tmp_path, monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="example-artifacts")
        parameters = deploy.package("example-artifacts", tmp_path / "build", s3)
        again = deploy.upload(deploy.build(), "example-artifacts", s3)  # reproducible: same keys, nothing new
        assert again == parameters
        stored = {o["Key"] for o in s3.list_objects_v2(Bucket="example-artifacts")["Contents"]}
        assert set(parameters) == {"ArtifactsBucket", *ARTIFACT_PARAMETERS}
        assert stored == {parameters[k] for k in ARTIFACT_PARAMETERS}
        assert parameters["GluePricesScriptKey"].startswith("glue/prices_job-")

        resolver = Resolver(template, parameters)

        def fetch(url: str) -> bytes:
            bucket, key = url.removeprefix("s3://").split("/", 1)
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()

        jobs = {name: template["Resources"][name]["Properties"] for name in GLUE_JOBS}
        arguments = {name: resolver.resolve(job["DefaultArguments"]) for name, job in jobs.items()}
        for name, (script, key_parameter, _raw) in GLUE_JOBS.items():
            location = resolver.resolve(jobs[name]["Command"]["ScriptLocation"])
            assert location == f"s3://example-artifacts/{parameters[key_parameter]}"
            assert fetch(location) == Path(script.__file__).read_bytes(), name
        assert arguments["RefineJob"]["--extra-py-files"] == arguments["PricesJob"]["--extra-py-files"]
        package = zipfile.ZipFile(io.BytesIO(fetch(arguments["RefineJob"]["--extra-py-files"])))
        imported = {f"bovespa_assets/{m}.py" for m in ("__init__", "lake", "glue/__init__", "glue/refine_job",
                                                       "refine/__init__", "refine/carteira", "refine/cotacoes",
                                                       "refine/catalog", "refine/tables", "refine/writer")}
        assert imported <= set(package.namelist())
        code = template["Resources"]["TriggerFunction"]["Properties"]["Code"]
        lambda_zip = fetch(f"s3://{resolver.resolve(code['S3Bucket'])}/{resolver.resolve(code['S3Key'])}")
        assert (tmp_path / "build" / "parameters.txt").read_text().splitlines() == [
            f"{k}={v}" for k, v in parameters.items()]

    # what Glue 5.0 is told to run: the pinned pyarrow, the lake, the contract's database, the real catalog
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"pyarrow=={resolver.values['PyarrowVersion']}" in pins
    for name, (script, _key, _raw) in GLUE_JOBS.items():
        job = jobs[name]
        assert job["GlueVersion"] == "5.0" and job["Command"]["Name"] == "glueetl", name
        assert arguments[name]["--additional-python-modules"] == f"pyarrow=={resolver.values['PyarrowVersion']}"
        glue_adds = ["--JOB_ID", "j_1", "--JOB_RUN_ID", "jr_abc", "--JOB_NAME", resolver.ref(name),
                     "--job-bookmark-option", "job-bookmark-disable", "--TempDir", "s3://example/tmp"]
        flat = [item for argument, value in arguments[name].items() for item in (argument, value)]
        args = script.parse_args([*flat, "--sessions", "2025-02-03", *glue_adds])
        assert args.lake_uri == f"s3://{resolver.ref('LakeBucket')}" and args.database == DATABASE == "workspace_db"
        assert args.catalog == "glue" and args.job_run_id == "jr_abc" and args.sessions == ["2025-02-03"], name

    # the Lambda zip: the handler at the root, with a boto3 that knows S3 conditional writes, and nothing else used
    extracted = tmp_path / "lambda"
    zipfile.ZipFile(io.BytesIO(lambda_zip)).extractall(extracted)
    probe = ("import json, botocore, boto3, lambda_handler; "
             "members = boto3.session.Session(region_name='us-east-1').client('s3').meta.service_model"
             ".operation_model('PutObject').input_shape.members; "
             "print(json.dumps([botocore.__file__, lambda_handler.handler.__name__, 'IfNoneMatch' in members]))")
    done = subprocess.run([sys.executable, "-S", "-c", probe], cwd=extracted, capture_output=True, text=True,
                          env={"PYTHONPATH": str(extracted), "PATH": os.environ.get("PATH", "")}, timeout=120)
    assert done.returncode == 0, done.stderr
    botocore_file, handler_name, conditional_writes = json.loads(done.stdout)
    assert Path(botocore_file).is_relative_to(extracted) and handler_name == "handler" and conditional_writes


# ------------------------------------------------------------------------------------------ IAM, storage, checks


def policy_documents(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, spec in template["Resources"].items():
        properties = spec.get("Properties", {})
        for policy in properties.get("Policies", []):
            found.append((f"{name}/{policy['PolicyName']}", policy["PolicyDocument"]))
        if "PolicyDocument" in properties:
            found.append((name, properties["PolicyDocument"]))
        if "AssumeRolePolicyDocument" in properties:
            found.append((f"{name}/trust", properties["AssumeRolePolicyDocument"]))
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_no_iam_wildcards_except_the_tls_deny(name):
    """Allow statements name their actions and resources; the only "*" is the deny-without-TLS on each bucket,
    where AWS requires Principal "*" and denying every action is the point."""
    template = load(name)
    resolver = Resolver(template, {"ArtifactsBucket": "example-artifacts", "LambdaCodeKey": "lambda/x.zip",
                                   "GlueScriptKey": "glue/x.py", "GluePricesScriptKey": "glue/p.py",
                                   "GluePackageKey": "glue/x.zip"})
    documents = policy_documents(template)
    assert documents
    for where, document in documents:
        for statement in document["Statement"]:
            actions = as_list(statement["Action"])
            if statement["Effect"] == "Deny":
                assert actions == ["s3:*"] and statement["Principal"] == "*", where
                assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}, where
                continue
            assert all("*" not in action for action in actions), (where, actions)
            assert statement.get("Principal") != "*", where
            for resource in as_list(resolver.resolve(statement.get("Resource", []))):
                # an ARN names its service, region, account and resource; a "*" only ends a named prefix
                # (bucket/raw*, table/workspace_db/*, a log group's streams :*)
                fields = resource.split(":", 5)
                assert len(fields) == 6 and "*" not in ":".join(fields[:5]), (where, resource)
                assert not fields[5].lstrip("/").startswith("*") and not fields[5].endswith("/*/*"), (where, resource)


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_bucket_is_private_encrypted_and_tls_only(name):
    template = load(name)
    buckets = resources_of(template, "AWS::S3::Bucket")
    policies = {spec["Properties"]["Bucket"]["Ref"]: spec for spec in
                resources_of(template, "AWS::S3::BucketPolicy").values()}
    for bucket, spec in buckets.items():
        properties = spec["Properties"]
        assert set(properties["PublicAccessBlockConfiguration"].values()) == {True}, bucket
        [encryption] = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms"), bucket
        statements = policies[bucket]["Properties"]["PolicyDocument"]["Statement"]
        assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
                   for s in statements), bucket


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_checkov_skip_is_justified(name):
    skips = [(resource, skip) for resource, spec in load(name)["Resources"].items()
             for skip in spec.get("Metadata", {}).get("checkov", {}).get("skip", [])]
    for resource, skip in skips:
        assert skip["id"].startswith("CKV_") and len(skip.get("comment", "").split()) >= 8, (resource, skip)


def test_the_outputs_configure_dagster_for_the_aws_target(template):
    resolver = Resolver(template, {})
    outputs = {name: resolver.resolve(template["Outputs"][name]["Value"]) for name in deploy.OUTPUT_ENV}
    env = deploy.env_from_outputs(outputs)
    settings = Settings.from_env(env)
    assert settings.target == "aws" and settings.lake_uri == outputs["LakeUri"]
    assert settings.glue_job_name == resolver.ref("RefineJob")
    assert settings.glue_prices_job_name == resolver.ref("PricesJob") != settings.glue_job_name
    assert settings.athena_workgroup == resolver.ref("AthenaWorkGroup")
    workgroup = template["Resources"]["AthenaWorkGroup"]["Properties"]["WorkGroupConfiguration"]
    assert workgroup["EnforceWorkGroupConfiguration"] is True
    assert settings.athena_output == resolver.resolve(workgroup["ResultConfiguration"]["OutputLocation"])
    assert env["AWS_REGION"] == REGION
    with pytest.raises(ValueError, match="LakeUri"):
        deploy.env_from_outputs({k: v for k, v in outputs.items() if k != "LakeUri"})
    with pytest.raises(ConfigError, match="BOVESPA_ATHENA_OUTPUT='results/': expected an S3 location"):
        Settings.from_env({**env, "BOVESPA_ATHENA_OUTPUT": "results/"})


def test_the_glue_database_is_the_contracts(template):
    resolver = Resolver(template, {})
    assert resolver.ref("Database") == DATABASE
    for name in GLUE_JOBS:
        job_arguments = template["Resources"][name]["Properties"]["DefaultArguments"]
        assert job_arguments["--database"] == {"Ref": "Database"}, name


def test_each_glue_role_reads_its_own_script_and_raw_dataset(template):
    """Each job's role reads its script, the shared package and its raw dataset, not the other job's;
    the Dagster policy follows the runs of both jobs."""
    parameters = {"ArtifactsBucket": "example-artifacts", "GlueScriptKey": "glue/refine_job-1.py",
                  "GluePricesScriptKey": "glue/prices_job-2.py", "GluePackageKey": "glue/bovespa_assets-3.zip"}
    resolver = Resolver(template, parameters)
    lake_arn = resolver.get_att("LakeBucket", "Arn")
    roles = {}
    for name, (_script, key_parameter, raw) in GLUE_JOBS.items():
        role = template["Resources"][name]["Properties"]["Role"]["Fn::GetAtt"][0]
        [policy] = template["Resources"][role]["Properties"]["Policies"]
        statements = {s["Sid"]: s for s in resolver.resolve(policy["PolicyDocument"]["Statement"])}
        assert sorted(statements["ReadItsCode"]["Resource"]) == sorted(
            f"arn:aws:s3:::example-artifacts/{parameters[k]}" for k in (key_parameter, "GluePackageKey"))
        readable = as_list(statements["ReadRaw"]["Resource"])
        assert readable == [f"{lake_arn}/{raw}*"], name
        other = next(r for _n, (_s, _k, r) in GLUE_JOBS.items() if r != raw)
        assert not any(f"{lake_arn}/{other}/x".startswith(r.rstrip("*")) for r in readable), name
        assert as_list(statements["WriteRefined"]["Resource"]) == [f"{lake_arn}/refined*"]
        roles[name] = role
    assert len(set(roles.values())) == len(GLUE_JOBS)  # a role per job

    statements = template["Resources"]["DagsterPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    [follow] = [s for s in statements if "glue:GetJobRuns" in as_list(s["Action"])]
    assert sorted(as_list(resolver.resolve(follow["Resource"]))) == sorted(
        f"arn:aws:glue:{REGION}:{ACCOUNT}:job/{resolver.ref(job)}" for job in GLUE_JOBS)


def test_packaging_refuses_a_bucket_that_is_not_a_bucket_name(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        deploy.main(["package", "--bucket", "s3://My_Bucket", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "--bucket 's3://My_Bucket': not an S3 bucket name" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing built, nothing uploaded
