"""The warehouse layer: the only code that talks to the warehouse."""

from mesdash.core.db.query_builder import QueryBuilder
from mesdash.core.db.sql_loader import SQLLoader
from mesdash.core.db.warehouse import Warehouse, get_warehouse, reset_warehouse

__all__ = ["QueryBuilder", "SQLLoader", "Warehouse", "get_warehouse", "reset_warehouse"]
