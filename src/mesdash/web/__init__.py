"""Pages: shell layout, templates, static assets (api client, charts, tables)."""
