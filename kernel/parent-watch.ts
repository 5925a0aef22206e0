/**
 * Notices when the process that started the kernel (Jupyter) has died, as
 * ipykernel does: an orphan is re-parented (to init or a subreaper), so its
 * parent pid changes. A kernel started directly by init has nothing to watch.
 */
export function watchParent(gone: () => void, everyMs = 1000): void {
  const first = process.ppid;
  if (first <= 1) return;
  const timer = setInterval(() => {
    if (process.ppid === first) return;
    clearInterval(timer);
    gone();
  }, everyMs);
  timer.unref();
}
