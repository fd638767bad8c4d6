import sys
from pathlib import Path

# test helpers (synthetic sessions) live next to the tests
sys.path.insert(0, str(Path(__file__).resolve().parent))
