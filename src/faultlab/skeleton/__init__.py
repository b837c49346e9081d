"""The skeleton ``faultlab init DIR --bare`` writes: a drill project for one's own system.

A stack file, a drill plugin module with the ``faultlab_*`` hooks, one scenario and a tiny
placeholder service on PostgreSQL, so that the skeleton runs as written
(``faultlab run scenarios/first.yaml``) before any of it is replaced by the real system.
Every file says, in comments, what to change.
"""

FILES = ("README.md", "stack.yaml", "my_plugin.py", "service.py", "scenarios/first.yaml")
"""What the skeleton is made of, relative to this folder."""
