# Sourced by the scripts that run on the GPU machine (scripts/gpu-notebooks.sh, scripts/pretrain/gpu-*.sh):
# unpack the device pack once, then the environment .device/run.sh gives the commands it runs (Node and the
# NVIDIA Vulkan driver), which these scripts need for the node processes they start themselves.
# DEVICE_READY=1: a command that runs several of these scripts at once unpacked the pack before starting them.
# DEVICE_ENV_QUIET=1: run.sh's GPU line not printed.
if [ -z "${DEVICE_READY:-}" ]; then
  if [ -n "${DEVICE_ENV_QUIET:-}" ]; then bash .device/run.sh true >/dev/null || exit 4
  else bash .device/run.sh true || exit 4; fi
fi
export PATH=/opt/node/bin:$PATH VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
