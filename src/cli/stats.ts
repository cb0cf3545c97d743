/** The p-th percentile (nearest rank) of a list of numbers; 0 for an empty list. The one percentile of slotq: the demo, the bench and the chaos run use it. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}
