/** Evaluation metrics the notebooks report. */
export function accuracy(pred: ArrayLike<number>, gold: ArrayLike<number>): number {
  if (pred.length !== gold.length) throw new Error(`accuracy: ${pred.length} predictions for ${gold.length} labels`);
  let ok = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === gold[i]) ok++;
  return pred.length ? ok / pred.length : NaN;
}

export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = x.length;
  let mx = 0, my = 0;
  for (let i = 0; i < n; i++) { mx += x[i]; my += y[i]; }
  mx /= n; my /= n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) { const a = x[i] - mx, b = y[i] - my; sxy += a * b; sxx += a * a; syy += b * b; }
  return sxy / Math.sqrt(sxx * syy);
}

/** F1 of the positive class (label 1), as GLUE reports for MRPC/QQP. */
export function f1(pred: ArrayLike<number>, gold: ArrayLike<number>): number {
  let tp = 0, fp = 0, fn = 0;
  for (let i = 0; i < pred.length; i++) {
    if (pred[i] === 1 && gold[i] === 1) tp++;
    else if (pred[i] === 1) fp++;
    else if (gold[i] === 1) fn++;
  }
  return tp ? (2 * tp) / (2 * tp + fp + fn) : 0;
}
