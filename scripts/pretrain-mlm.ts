/**
 * Pretrains the embedded masked LM (data/sharelora-roberta-mini,
 * RobertaForMaskedLM) from scratch with dynamic masking, on the same token
 * data as the causal LM (prepared by either script). Same commands and flags
 * as scripts/pretrain-causal.ts; scripts/pretrain/README.md gives the procedure.
 *   node dist/scripts/pretrain-mlm.js train --data .pretrain/data --run .pretrain/mlm --out data/sharelora-roberta-mini --total-steps N --budget-minutes 9 --backend webgpu
 */
import { cli } from './pretrain/cli.js';

await cli('mlm');
