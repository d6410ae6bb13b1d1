"""``TemplateURL`` read as S3 reads it, whatever endpoint the client was pointed at.

**AWS**: a ``TemplateURL`` (of a stack, a change set, a nested stack) is an S3 object URL:
virtual-hosted (``https://bucket.s3.region.amazonaws.com/key``) or path-style
(``https://s3.region.amazonaws.com/bucket/key``). A URL that names no readable object is
refused: ``ValidationError: TemplateURL must reference a valid S3 object to which you have
access.``

**plain moto**: only a URL containing ``localhost`` is read path-style; a client pointed at
``http://127.0.0.1:4566`` (what ``mila sandbox`` prints) builds
``http://127.0.0.1:4566/bucket/key``, which is read as bucket ``127`` — every ``sam deploy``,
``cdk deploy`` and ``aws cloudformation deploy --s3-bucket`` fails with ``NoSuchBucket``.

**here**: a URL whose host is an IP address, ``localhost``, or S3's own endpoint
(``s3.…``/``s3-…``) is path-style; ``bucket.s3….`` or ``bucket.localhost`` is
virtual-hosted; ``s3://bucket/key`` is accepted too.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import unquote, urlparse


def bucket_and_key(url: str) -> tuple[str, str] | None:
    """The bucket and key a template URL names, or ``None``."""
    parts = urlparse(url)
    host = (parts.hostname or "").lower()
    path = unquote(parts.path).lstrip("/")
    if parts.scheme == "s3":
        return (host, path) if host and path else None
    try:
        ipaddress.ip_address(host)
        path_style = True
    except ValueError:
        path_style = host == "localhost" or host.startswith(("s3.", "s3-"))
    if path_style:
        bucket, _, key = path.partition("/")
        return (bucket, key) if bucket and key else None
    for marker in (".s3.", ".s3-", ".localhost"):
        if marker in host or host.endswith(marker.rstrip(".")):
            return (host.split(marker)[0], path) if path else None
    return (host.split(".")[0], path) if host and path else None


def read_template(template_url: str, account_id: str, partition: str) -> str:
    from moto.cloudformation.exceptions import ValidationError
    from moto.s3.models import s3_backends

    refused = ValidationError(message="TemplateURL must reference a valid S3 object to which "
                                      "you have access.")
    found = bucket_and_key(template_url)
    if found is None:
        raise refused
    try:
        key = s3_backends[account_id][partition].get_object(*found)
    except Exception:
        raise refused from None
    if key is None:
        raise refused
    return str(key.value.decode("utf-8"))


def install() -> None:
    from moto.cloudformation import models, responses

    models.get_stack_from_s3_url = read_template
    responses.get_stack_from_s3_url = read_template
