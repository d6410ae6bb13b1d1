"""mila-s3-state: the ``s3`` state backend (one S3 bucket, locks by conditional writes)."""

__version__ = "0.1.0"
