# -*- Python -*-
# lit configuration of the kvc FileCheck and integration tests.
import os
import shutil
import subprocess
import sys

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "kvc"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.kvc_obj_root, "test")
config.excludes = ["Unit", "lib", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py"]

# The GPU machine has no LLVM: utils/gpu-run.sh writes a site config there
# with kvc_gpu_only set and runs only the CUDA tests, which need no LLVM tool.
gpu_only = getattr(config, "kvc_gpu_only", False)
if not gpu_only:
    llvm_config.use_default_substitutions()
config.substitutions.append(("%PATH%", config.environment["PATH"]))
config.substitutions.append(("%shlibext", ".so"))
config.substitutions.append(
    ("%mlir_runner_utils", os.path.join(config.mlir_lib_dir, "libmlir_runner_utils.so")))
config.substitutions.append(
    ("%mlir_c_runner_utils", os.path.join(config.mlir_lib_dir, "libmlir_c_runner_utils.so")))

llvm_config.with_system_environment(["HOME", "TMPDIR", "CUDA_HOME", "CUDA_ROOT", "CUDA_PATH"])
tool_dirs = [config.kvc_tools_dir, config.llvm_tools_dir]
for tool_dir in tool_dirs:
    llvm_config.with_environment("PATH", tool_dir, append_path=True)
llvm_config.add_tool_substitutions(
    ["kvc-opt", "kvc-compile", "kvc-run", ToolSubst("mlir-runner", unresolved="ignore" if gpu_only else "fatal")],
    tool_dirs)

# ptxas for GPU binaries: lit strips PATH, so hand the toolkit on explicitly.
if config.cuda_toolkit_dir:
    llvm_config.with_environment("PATH", os.path.join(config.cuda_toolkit_dir, "bin"),
                                 append_path=True)
    config.available_features.add("ptxas")

# `cuda`: a GPU this machine can run kernels on (the GPU machine, not CI).
def _has_gpu():
    smi = shutil.which("nvidia-smi")
    if not smi:
        return False
    try:
        return subprocess.run([smi, "-L"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False

if _has_gpu():
    config.available_features.add("cuda")

# What the GPU tests run: the runtime library and the kernel library that
# `kvc-kernels` built (both under the build directory), through this Python.
config.substitutions.append(("%python", sys.executable))
config.substitutions.append(("%kvc_obj_root", config.kvc_obj_root))
config.substitutions.append(
    ("%kvc_rt", os.path.join(config.kvc_obj_root, "lib", "libkvc_rt.so")))
config.substitutions.append(
    ("%kvc_kernels", os.path.join(config.kvc_obj_root, "kernels", "kvc_kernels.cubin")))
