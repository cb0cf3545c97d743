/** Settles like p, or rejects with onTimeout() after ms: every wait in slotq has a deadline. */
export function withDeadline<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(onTimeout()), ms)));
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}
