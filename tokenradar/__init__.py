"""tokenradar's command line: demo, worker, replay, simulate, schema, config check."""
