# lit configuration of the tdsl tests that carry RUN lines: tests/golden (the IR dump,
# checked with FileCheck) and tests/driver (the tcc command line).
#
# Run through ctest (`ctest -R golden`), which uses the build's lit.site.cfg.py, or directly
# from the source tree: `python3 /usr/lib/llvm-19/build/utils/lit/lit.py -sv tests/golden`,
# which uses $TCC or build/tcc and FileCheck from LLVM 19.
#
# Substitutions: %tcc (the compiler), %FileCheck, and lit's own %s (this test file) and
# %t (a scratch path for the test).
import os

import lit.formats

config.name = "tdsl"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".tdsl"]
config.test_source_root = os.path.dirname(os.path.abspath(__file__))
# The other test kinds have runners of their own; Inputs/ and inputs/ hold imported helpers.
config.excludes = ["errors", "numeric", "unit", "fuzz", "Inputs", "inputs", "lit.cfg.py"]

source_dir = getattr(config, "tdsl_source_dir", os.path.dirname(config.test_source_root))
if not getattr(config, "test_exec_root", None):
    config.test_exec_root = os.path.join(source_dir, "build", "tests", "lit")
tcc = getattr(config, "tcc_path", None) or os.environ.get("TCC") or os.path.join(source_dir, "build", "tcc")
filecheck = getattr(config, "filecheck_path", None) or "/usr/lib/llvm-19/bin/FileCheck"
for tool in (tcc, filecheck):
    if not os.access(tool, os.X_OK):
        lit_config.fatal("%s is missing; build tdsl first (bash scripts/build.sh)" % tool)

# LLVM's small test tools (count, not) live next to FileCheck.
config.environment["PATH"] = os.pathsep.join(
    [os.path.dirname(filecheck), "/usr/lib/llvm-19/bin", config.environment.get("PATH", "")])
config.substitutions.append(("%tcc", tcc))
config.substitutions.append(("%FileCheck", filecheck))
config.substitutions.append(("%stdlib", os.path.join(source_dir, "stdlib")))
# `REQUIRES: nvrtc`: the build found NVRTC, so tcc can make PTX (--emit=ptx, CUDA .so builds).
# Run from the source tree, the CUDA toolkit's usual place decides.
if getattr(config, "tdsl_have_nvrtc", os.path.exists("/usr/local/cuda/include/nvrtc.h")):
    config.available_features.add("nvrtc")
# `cuda-driver`: libcuda.so.1 loads; `cuda-gpu`: it also reports a device, so tcc run
# --engine cuda can run (cuda_run.tdsl). Asked in a child process, the way runtime/cuda.c
# asks, so that lit's own processes never initialise CUDA.
_CUDA_PROBE = """
import ctypes, sys
try:
    cu = ctypes.CDLL("libcuda.so.1")
except OSError:
    sys.exit(2)
n = ctypes.c_int(0)
ok = cu.cuInit(0) == 0 and cu.cuDeviceGetCount(ctypes.byref(n)) == 0 and n.value > 0
sys.exit(0 if ok else 1)
"""
def _cuda_probe():
    import subprocess
    import sys
    try:
        return subprocess.run([sys.executable, "-c", _CUDA_PROBE], timeout=60).returncode
    except (OSError, subprocess.TimeoutExpired):
        return 2
_cuda = _cuda_probe()
if _cuda in (0, 1):
    config.available_features.add("cuda-driver")
if _cuda == 0:
    config.available_features.add("cuda-gpu")
# `fake-cuda`: the build's stand-in driver (tests/unit/fake_cuda.c, a libcuda.so.1 that records
# its calls and runs nothing) is there; %fakecuda is its directory, for LD_LIBRARY_PATH.
fake_cuda_dir = getattr(config, "tdsl_fake_cuda_dir", os.path.join(source_dir, "build", "tests", "fake_cuda"))
if os.path.exists(os.path.join(fake_cuda_dir, "libcuda.so.1")):
    config.available_features.add("fake-cuda")
    config.substitutions.append(("%fakecuda", fake_cuda_dir))
# Tests see the build's stdlib, not whatever the caller's environment points at.
config.environment.pop("TDSL_STDLIB", None)
