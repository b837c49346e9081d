import sys
from pathlib import Path

# The synthetic-run builder is shared with tests/analysis.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis"))
