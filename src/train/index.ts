export { AdamW, type AdamWOptions } from './adamw.js';
export { evalLoss, lossAndGrads, type Batch, type LossAndGrads } from './loss.js';
export { accuracy, f1, pearson } from './metrics.js';
export { lrMultiplier, type ScheduleName } from './schedule.js';
export { NonFiniteError, Trainer, type EvalResult, type FitOptions, type TrainerOptions } from './trainer.js';
export { clearStop, requestStop, stopRequested, TrainingInterrupted } from './stop.js';
export type { StepRecord, TrainerCallbacks } from './callbacks.js';
export { gridConfigs, gridLabel, meanStd, runGrid, summarizeGrid, type GridConfig, type GridOptions, type GridRunInfo, type GridSpace, type SummarizeOptions } from './grid.js';
export { bleu, bleuFromCounts, corpusBleu, lcsLength, rougeL, rougeLSentence, tokenize13a, tokenizeRouge, type BleuOptions, type BleuResult, type RougeResult, type RougeScore } from './textmetrics.js';
