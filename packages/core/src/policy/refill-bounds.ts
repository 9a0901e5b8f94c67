/**
 * How far a token bucket or a pool may reach. Every store computes them exactly (JavaScript and
 * Lua in doubles, PostgreSQL in bigints), which holds while every quantity and every time they
 * yield stays below 2^53. Bounding a bucket's token-milliseconds and a pool's refill from empty
 * to 2^52 keeps "now" (below 2^52 ms until the year 144,000) plus any of them below 2^53.
 */
export const MAX_REFILL = 2 ** 52;

/** The issue with a bucket's or a pool's size and refill (path: `capacity`), if any. */
export function refillBoundIssue(
  kind: "tokenBucket" | "pool",
  capacity: number,
  refillTokens: number,
  refillEveryMs: number,
): string | undefined {
  // Written as "not above": a value another check refuses (NaN) adds no issue of its own here.
  if (kind === "tokenBucket") {
    // Kept in token-milliseconds: capacity * every of them, refilled over at most as many ms.
    if (!(capacity * refillEveryMs > MAX_REFILL)) return undefined;
    return "capacity times refill.every (in ms) must stay within 2^52; use a smaller capacity or a shorter refill period";
  }
  if (!(Math.ceil(capacity / refillTokens) * refillEveryMs > MAX_REFILL)) return undefined;
  return "a refill from empty (capacity / refill.tokens steps of refill.every) must take at most 2^52 ms; use fewer steps or a shorter refill period";
}
