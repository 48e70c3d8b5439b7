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
# Tests see the build's stdlib, not whatever the caller's environment points at.
config.environment.pop("TDSL_STDLIB", None)
