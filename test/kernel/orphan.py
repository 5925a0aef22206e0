"""Starts the sharelora kernel the way Jupyter does (jupyter_client's
KernelManager), prints the kernel's pid once it answers, and then waits to be
killed: lifetime.test.ts SIGKILLs this process and watches the kernel.

With the argument "stuck", a cell that never yields is left running first.
"""
import os
import sys
import time

from jupyter_client.manager import KernelManager

km = KernelManager(kernel_name=os.environ.get("SHARELORA_KERNEL_NAME", "sharelora"))
km.start_kernel()
kc = km.client()
kc.start_channels()
kc.wait_for_ready(timeout=180)
if sys.argv[1:] == ["stuck"]:
    kc.execute("for (;;) { await 0 }")
    time.sleep(1)
print(km.provisioner.pid, flush=True)
time.sleep(3600)
