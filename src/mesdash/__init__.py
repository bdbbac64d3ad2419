"""mesdash: lot lineage, trace and history reports over an MES data warehouse."""

__version__ = "0.1.0"
