/**
 * Statistics for results tables, and similarity measures for trained weights.
 * Its own folder rather than src/train: none of it trains anything (only
 * adapterSimilarity reads tensors, once each, into float64), and notebooks
 * apply it to any table of runs (a grid, several seeds, per-example scores).
 */
export { betaInc, gammaQ, lnGamma, normalCdf, normalQuantile, tCdf, tPdf, tQuantile, tSurvival } from './distributions.js';
export {
  bootstrapCI, meanCI, pairedTTest, quantile, sd, wilcoxonSignedRank,
  type Alternative, type BootstrapCI, type BootstrapOptions, type LevelOptions, type MeanCI, type PairedTTest, type TestOptions, type WilcoxonResult,
} from './stats.js';
export { compare, summarize, type ComparisonOptions, type SummaryOptions } from './tables.js';
export {
  adapterSimilarity, cosineSimilarity, linearCKA, lowRankSimilarity, meanOffDiagonal, subspaceSimilarity,
  type AdapterLike, type LowRankFactors, type LowRankOptions, type MatrixLike, type ModuleSimilarity, type SimilarityMatrices, type SubspaceOptions,
} from './similarity.js';
