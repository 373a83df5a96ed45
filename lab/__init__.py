"""The lab: what engineers use to study the detectors, and nobody needs in production.

The simulator, the evaluation and its HTML report, the robustness matrix, the demo, and
the launchers for a local broker and a worker process. The runtime (``schemas``,
``detectors``, ``streams``, the CLI and ``replay``) never imports it: the CLI's lab
commands import it inside the command.
"""
