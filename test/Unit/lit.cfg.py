# -*- Python -*-
# lit configuration of the kvc GoogleTest binaries: each test case counts.
import os

import lit.formats

config.name = "kvc-unit"
config.suffixes = []
config.test_exec_root = os.path.join(config.kvc_obj_root, "test", "Unit")
config.test_source_root = config.test_exec_root
config.test_format = lit.formats.GoogleTest(".", "-tests")
config.environment["KVC_TEST_SEED"] = os.environ.get("KVC_TEST_SEED", "")
