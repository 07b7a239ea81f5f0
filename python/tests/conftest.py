import os
import sys

# The staged package (build/python) when run outside ctest.
_here = os.path.dirname(os.path.abspath(__file__))
_staged = os.path.join(_here, "..", "..", "build", "python")
if "PYTHONPATH" not in os.environ and os.path.isdir(_staged):
    sys.path.insert(0, os.path.abspath(_staged))
sys.path.insert(0, _here)

# Subprocesses (the examples) import the same package, from any working directory.
import crnn  # noqa: E402

os.environ["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(crnn.__file__)))
