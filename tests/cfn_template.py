"""infra/*.yaml as data: a YAML loader for CloudFormation's short forms and a resolver of Ref/Sub/GetAtt,
for tests that hold the templates against the code (tests/test_infra.py, tests/test_s3_lake.py)."""

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = {name: ROOT / "infra" / f"{name}.yaml" for name in ("artifacts", "template")}
REGION, ACCOUNT = "us-east-1", "123456789012"  # moto's default account


class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms: !Ref X → {"Ref": X}, !GetAtt A.B → {"Fn::GetAtt": [A, B]}, ..."""


def _tag(loader: CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _tag)


def load(name: str) -> dict[str, Any]:
    return yaml.load(TEMPLATES[name].read_text(encoding="utf-8"), Loader=CfnLoader)  # a SafeLoader


class Resolver:
    """Evaluates Ref/Sub/GetAtt the way CloudFormation would for a deploy with the given parameters."""

    def __init__(self, template: dict[str, Any], parameters: dict[str, str]):
        self.template = template
        self.values = {name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()}
        self.values.update(parameters)
        self.values.update({"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws"})

    def ref(self, name: str) -> str:
        if name in self.values:
            return self.values[name]
        properties = self.template["Resources"][name]["Properties"]
        for field in ("BucketName", "Name", "FunctionName", "QueueName", "RoleName", "LogGroupName"):
            if field in properties:
                return self.resolve(properties[field])
        if "DatabaseInput" in properties:
            return self.resolve(properties["DatabaseInput"]["Name"])
        raise KeyError(name)

    def get_att(self, name: str, attribute: str) -> str:
        kind = self.template["Resources"][name]["Type"]
        arns = {
            "AWS::S3::Bucket": "arn:aws:s3:::{name}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{{name}}",
            "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{{name}}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{{name}}:*",
        }
        assert attribute == "Arn", f"{name}.{attribute}"
        return arns[kind].format(name=self.ref(name))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            return self.ref(value["Ref"])
        if set(value) == {"Fn::GetAtt"}:
            return self.get_att(*value["Fn::GetAtt"])
        if set(value) == {"Fn::Sub"}:
            text = value["Fn::Sub"]
            def substitute(match: re.Match) -> str:
                name = match.group(1)
                return self.get_att(*name.split(".", 1)) if "." in name else self.ref(name)

            return re.sub(r"\$\{([^}!]+)\}", substitute, text)
        return {k: self.resolve(v) for k, v in value.items()}
