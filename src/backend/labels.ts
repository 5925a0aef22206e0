/**
 * torch's ignore_index: a label that carries no loss (padding, a prompt's
 * tokens, the positions a masked LM does not predict). Collation writes it,
 * the losses skip it (ops.ts and the webgpu kernel, hence its floor), the
 * batch checks and evaluation count around it.
 */
export const IGNORE_INDEX = -100;
