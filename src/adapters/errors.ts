/** An adapter used after unload() or mergeAndUnload(): it no longer has weights. */
export class AdapterUnloadedError extends Error {
  constructor(action: string) {
    super(`cannot ${action}: this adapter was unloaded (unload() or mergeAndUnload() removed its weights); ${action.startsWith('save') ? 'save before unloading, or load the folder again' : 'inject or load a new adapter'}`);
    this.name = 'AdapterUnloadedError';
  }
}
