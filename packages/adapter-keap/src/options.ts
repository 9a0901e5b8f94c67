import { ConfigError, type ConfigIssue } from "@sluice/core";

/**
 * Refuses option names a factory does not know, with a "did you mean" hint (API.md "Options are
 * checked"): a misspelt option would otherwise be ignored silently.
 */
export function checkOptionNames(options: object, known: readonly string[], path = ""): void {
  const issues: ConfigIssue[] = [];
  for (const name of Object.keys(options)) {
    if (known.includes(name)) continue;
    const hint = closest(name, known);
    issues.push({
      path: path === "" ? name : `${path}.${name}`,
      message: `unknown option${hint === undefined ? "" : ` (did you mean "${hint}"?)`}`,
    });
  }
  if (issues.length > 0) throw new ConfigError(issues);
}

/** The known name nearest to `word` by edit distance, when near enough to be a typo. */
function closest(word: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        previous[j]! + 1,
        row[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = row;
  }
  return previous[b.length]!;
}
