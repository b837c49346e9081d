"""The trading stack's drill project as it ships: the stack files (with its monitoring and
alert rules), the failure-test catalogue (one scenario per failure test), the runbooks, the
drill plans with their scripted people, and the programme file.

``faultlab init DIR`` writes these files into a new folder, where they run as they are
(``faultlab drill drills/smoke.yaml``). In the source tree the folders are links to the
repository's own ``stacks/``, ``scenarios/``, ``runbooks/``, ``drills/`` and ``programme.yaml``, so there is
one copy of each; a wheel holds the files themselves. Registered as a project in
pyproject.toml (``[project.entry-points."faultlab.projects"]``).
"""

name = "trading"
summary = "the bundled trading stack: order gateway, router, exchange simulator, nightly batch, 25 failure tests"

FILES = (
    "README.md",
    "stacks/trading.yaml",
    "stacks/trading-monitored.yaml",
    "stacks/trading-alerts.yaml",
    "scenarios/ft-*.yaml",
    "runbooks/rb-*.yaml",
    "drills/smoke.yaml",
    "drills/quarterly.yaml",
    "drills/recovery-rehearsal.yaml",
    "drills/operators/*.yaml",
    "programme.yaml",
)
"""What a new project gets, as glob patterns relative to this folder."""
