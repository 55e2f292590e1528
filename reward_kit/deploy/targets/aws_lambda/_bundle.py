"""The zip a Lambda deploy uploads: read and size-checked before any AWS call, then uploaded
directly or, over Lambda's direct-upload limit, through S3."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...._errors import ConfigurationError
from ..._errors import DeployError
from ..._spec import Artifacts
from ...artifacts import UNZIPPED_LIMIT, ZIPPED_LIMIT
from ._api import aws_api
from ._function import LambdaFunction

__all__ = ["read_bundle", "upload_bundle"]


def read_bundle(artifacts: Artifacts) -> tuple[bytes, bool]:
    """The zip's bytes and whether it must go through S3; refuses a bundle over 250 MB."""
    if artifacts.lambda_zip is None:
        raise ConfigurationError("aws-lambda needs a Lambda zip (rk build --format lambda-zip)")
    path = Path(artifacts.lambda_zip)
    with zipfile.ZipFile(path) as bundle:
        unzipped = sum(info.file_size for info in bundle.infolist())
    if unzipped > UNZIPPED_LIMIT:
        raise ConfigurationError(
            f"the Lambda bundle {path.name} is {unzipped / 2**20:.1f} MB unzipped, over "
            f"Lambda's {UNZIPPED_LIMIT // 2**20} MB limit: drop large requirements"
        )
    data = path.read_bytes()
    return data, len(data) > ZIPPED_LIMIT or artifacts.upload_via_s3


def upload_bundle(
    s3: Any, fn: LambdaFunction, data: bytes, account: Callable[[], str]
) -> dict[str, str]:
    """Put the zip in S3 (the given bucket, or reward-kit-ACCOUNT-REGION, made when missing)."""
    bucket = fn.options.s3_bucket
    if bucket is None:
        bucket = f"reward-kit-{account()}-{fn.region}"
        try:
            with aws_api("s3", "HeadBucket"):
                s3.head_bucket(Bucket=bucket)
        except DeployError:
            where = {"LocationConstraint": fn.region}
            location = {} if fn.region == "us-east-1" else {"CreateBucketConfiguration": where}
            with aws_api("s3", "CreateBucket"):
                s3.create_bucket(Bucket=bucket, **location)
    key = f"lambda/{fn.name}/{hashlib.sha256(data).hexdigest()[:16]}.zip"
    with aws_api("s3", "PutObject"):
        s3.put_object(Bucket=bucket, Key=key, Body=data)
    return {"S3Bucket": bucket, "S3Key": key}
