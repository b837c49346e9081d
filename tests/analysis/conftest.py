import sys
from pathlib import Path

# The synthetic-run builder lives beside these tests and is shared with tests/report.
sys.path.insert(0, str(Path(__file__).resolve().parent))
