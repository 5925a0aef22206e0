"""jupyter_kernel_test's protocol suite against the sharelora kernel.

Run by conformance.test.ts with /usr/bin/python3 (Debian's
python3-jupyter-kernel-test), JUPYTER_PATH pointing at a temporary kernelspec
and the working directory a temporary folder without node_modules.
"""
import os
import unittest

import jupyter_kernel_test


class ShareLoRAKernelTests(jupyter_kernel_test.KernelTests):
    kernel_name = os.environ.get("SHARELORA_KERNEL_NAME", "sharelora")
    language_name = "typescript"
    file_extension = ".ts"

    code_hello_world = 'console.log("hello, world")'
    code_stderr = 'console.error("oops")'

    completion_samples = [
        {"text": "Math.PI.toFix", "matches": {"toFixed"}},
        {"text": "plot.lin", "matches": {"line"}},
    ]
    complete_code_samples = ["1 + 1", "const x = 1;", "function f() { return 1 }"]
    incomplete_code_samples = ["function f() {", "const xs = [1,"]
    invalid_code_samples = ["1 +* 2)", "const = ;"]

    code_inspect_sample = "Math.max"
    code_generate_error = 'throw new Error("boom")'

    code_execute_result = [
        {"code": "6 * 7", "result": "42"},
        {"code": "'a' + 'b'", "result": "'ab'"},
        {"code": "aq.table({ step: [1, 2], loss: [2.5, 1.25] })", "mime": "text/html"},
        {"code": "tf.tensor([[1, 2], [3, 4]])", "mime": "text/html"},
        {"code": "plot.line([3, 1, 2])", "mime": "application/vnd.plotly.v1+json"},
    ]
    code_history_pattern = "6 * 7"
    supported_history_operations = ("tail", "range", "search")

    code_display_data = [
        {"code": 'display.html("<b>bold</b>")', "mime": "text/html"},
        {"code": "display(plot.bar({ a: 1, b: 2 }))", "mime": "application/vnd.plotly.v1+json"},
        {"code": 'import * as tslab from "tslab"; tslab.display.markdown("*tslab*")', "mime": "text/markdown"},
    ]
    code_clear_output = "display.clear()"


if __name__ == "__main__":
    unittest.main(verbosity=2)
