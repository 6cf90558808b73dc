#!/usr/bin/env python3
"""Transforms a SAM template into plain CloudFormation, offline.

    sam_translate.py TEMPLATE OUTPUT.json [TEMPLATE OUTPUT.json ...]

`cfn-lint` and `sam validate --lint` do not check the properties of the
event source mappings that SAM generates from a function's `Events`
(`StartingPosition`, `BatchSize`, `FunctionResponseTypes`, ...).
`cfn-lint` on the generated CloudFormation does. Used by .ci/deploy-check.

Offline: every `CodeUri` that is a local path is replaced with an s3:// URI
(samtranslator accepts nothing else), and IAM managed policy names resolve
to a stub map (the template attaches none; SAM would otherwise ask IAM).
AWS_DEFAULT_REGION must be set (samtranslator builds ARNs with it).
"""

import json
import os
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class OfflinePolicyLoader:
    """Stands in for samtranslator's ManagedPolicyLoader (which calls IAM)."""

    def load(self):
        return {}


def translate(source: str, output: str) -> None:
    with open(source, encoding="utf-8") as f:
        template = yaml_parse(f.read())

    functions = 0
    for name, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        functions += 1
        code_uri = resource.get("Properties", {}).get("CodeUri")
        if isinstance(code_uri, str) and not code_uri.startswith("s3://"):
            resource["Properties"]["CodeUri"] = f"s3://deploy-check-bucket/{name}.zip"

    cloudformation = transform(template, {}, OfflinePolicyLoader())
    with open(output, "w", encoding="utf-8") as f:
        json.dump(cloudformation, f, indent=1, sort_keys=True)
    mappings = [
        name
        for name, resource in cloudformation.get("Resources", {}).items()
        if resource.get("Type") == "AWS::Lambda::EventSourceMapping"
    ]
    print(
        f"{source}: {functions} function(s), {len(mappings)} event source mapping(s)"
        f" -> {output}"
    )


def main() -> int:
    args = sys.argv[1:]
    if not args or len(args) % 2:
        print(__doc__, file=sys.stderr)
        return 2
    if not os.environ.get("AWS_DEFAULT_REGION"):
        print("sam_translate.py: set AWS_DEFAULT_REGION", file=sys.stderr)
        return 2
    for source, output in zip(args[0::2], args[1::2]):
        translate(source, output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
