from typing import TYPE_CHECKING
try:
    from .api import app
except ImportError:
    from api import app
if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
if __name__ == "__main__":
    import uvicorn
