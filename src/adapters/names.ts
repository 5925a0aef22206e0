/**
 * PEFT's names, kept in one place so that PEFT loads the folders we write
 * and we load PEFT's: in memory a parameter is named as
 * peft_model.named_parameters() names it (adapter name `default` included),
 * in the file without the adapter name.
 */
export const PEFT_PREFIX = 'base_model.model.';
export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';

/** PEFT's names with the adapter name removed (the keys of adapter_model.safetensors); VeRA's vectors end in `.default`. */
export function fileKey(paramName: string): string {
  return paramName.replace(/\.default(\.|$)/, '$1').replace('.modules_to_save.', '.');
}

/** VeRA's frozen projections, once per model (PEFT's BufferDicts on the tuner; in the file without `.default`) */
export const VERA_A = 'base_model.vera_A.default';
export const VERA_B = 'base_model.vera_B.default';
/** Tied-LoRA's per-layer vectors (no PEFT counterpart; they live in sharelora_factors.safetensors) */
export const TIED_U = 'lora_u';
export const TIED_V = 'lora_v';
/** a Tied-LoRA folder's exact factors: the tied A and B once and each layer's u and v, beside PEFT's folded copies */
export const TIED_FACTORS = 'sharelora_factors.safetensors';

/** the file key of one projection's lora_A or lora_B */
export const loraKey = (path: string, which: 'A' | 'B') => `${PEFT_PREFIX}${path}.lora_${which}.weight`;
