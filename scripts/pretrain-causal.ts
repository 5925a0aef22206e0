/**
 * Pretrains the embedded causal LM (data/sharelora-gpt2-mini, GPT2LMHeadModel)
 * from scratch with this project's Trainer. Each command stops itself before
 * its wall-clock budget and the same command continues the run exactly;
 * scripts/pretrain/README.md gives the whole procedure.
 *   node dist/scripts/pretrain-causal.js prepare --out .pretrain/data
 *   node dist/scripts/pretrain-causal.js train --data .pretrain/data --run .pretrain/causal --out data/sharelora-gpt2-mini --total-steps N --budget-minutes 9 --backend webgpu
 *   node dist/scripts/pretrain-causal.js eval --model data/sharelora-gpt2-mini --data .pretrain/data
 *   node dist/scripts/pretrain-causal.js sweep --data .pretrain/data --minutes 2 --out sweep-causal.json --backend webgpu
 */
import { cli } from './pretrain/cli.js';

await cli('causal');
