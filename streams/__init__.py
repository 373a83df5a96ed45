"""The Faust app at the edge: topics, the user-state table, agents, DLQ, metrics,
and broker discovery (env -> testcontainers -> embedded Tansu).

Import ``tokenradar.streams.app``/``tokenradar.streams.worker`` explicitly: importing this package
does not pull in Faust, so ``tokenradar.streams.broker`` stays cheap for the CLI.
"""
