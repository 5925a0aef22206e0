export { injectShareLoRA, ShareLoraAdapter } from './sharelora.js';
export { AdapterUnloadedError } from './errors.js';
export { fileKey } from './names.js';
export { loadAdapter, saveAdapter, type LoadAdapterOptions } from './peft.js';
export { AdapterConfig, AdapterConfigError, METHODS, resolveGroups, resolveOptions, SHARES, sharesA, sharesB, type Method, type PeftAdapterConfig, type Share, type ShareLoraOptions } from './config.js';
export { countParameters, countVariant, DEFAULT_VARIANTS, paperTable, parameterTable, PAPER_SHAPES, type AccountingRow, type ArchShape, type TableOptions } from './accounting.js';
export { findTargets } from './targets.js';
export { FullFineTune, fullFineTune, type FullFineTuneOptions } from './full.js';
export { veraProjection } from './vera.js';
