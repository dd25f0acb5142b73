# reduced from cloudflare/workers-py@b00837d41fd4d6e8f475a2fe380ee6543344de23:packages/runtime-sdk/tests/bindings-test/src/test_hyperdrive_mysql.py
import sys
import pymysql
import pytest
from conftest import unique_table_name
skip_if_no_socket_support = None
_connect = None
test_connect = None
test_create_insert_select = None
test_update = None
test_delete = None
test_transaction_rollback = None
test_multiple_data_types = None
test_executemany = None
