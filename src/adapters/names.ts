/**
 * PEFT's names, kept in one place so that PEFT loads the folders we write
 * and we load PEFT's: in memory a parameter is named as
 * peft_model.named_parameters() names it (adapter name `default` included),
 * in the file without the adapter name.
 */
export const PEFT_PREFIX = 'base_model.model.';
export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';

/** PEFT's names with the adapter name removed (the keys of adapter_model.safetensors). */
export function fileKey(paramName: string): string {
  return paramName.replace('.default.', '.').replace('.modules_to_save.', '.');
}

/** the file key of one projection's lora_A or lora_B */
export const loraKey = (path: string, which: 'A' | 'B') => `${PEFT_PREFIX}${path}.lora_${which}.weight`;
