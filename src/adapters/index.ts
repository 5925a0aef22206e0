export { injectShareLoRA, ShareLoraAdapter, fileKey } from './sharelora.js';
export { loadAdapter, saveAdapter } from './peft.js';
export { AdapterConfigError, resolveOptions, SHARES, type Share, type ShareLoraOptions } from './config.js';
export { countParameters, paperTable, parameterTable, PAPER_SHAPES, type AccountingRow, type ArchShape } from './accounting.js';
export { findTargets } from './targets.js';
export { FullFineTune, fullFineTune } from './full.js';
