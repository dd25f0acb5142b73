import acme_client
import zeta_util
import speedy_parse
import pytest
from workers import WorkerEntrypoint
