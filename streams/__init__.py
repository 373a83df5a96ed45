"""The Faust app at the edge: topics, the user-state table, agents, DLQ, metrics,
and broker discovery (env -> testcontainers -> embedded Tansu).

Import ``streams.app``/``streams.worker`` explicitly: importing this package
does not pull in Faust, so ``streams.broker`` stays cheap for the CLI.
"""
