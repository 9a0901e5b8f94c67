/**
 * Splits a state key into its scope key and the policy's name in it. A state key reads
 * `<head>{<partition>}:<policy name>[:<fields>]` (see `KeyPlan`); the scope key drops
 * `:<policy name>`, so it keeps the hash tag, and every policy of one key and scope shares it.
 * Given the scope key, the head ends at its first `}` after the first `{`, so the state key is
 * recovered from the pair: distinct state keys never share a (scope key, name) pair. Another
 * shape is its own scope key under the name "" (which no parsed key has).
 */
export function splitStateKey(key: string): [scopeKey: string, name: string] {
  const open = key.indexOf("{");
  if (open >= 0) {
    const close = key.indexOf("}", open + 1);
    if (close > 0 && key.charCodeAt(close + 1) === 58 /* : */) {
      let end = key.indexOf(":", close + 2);
      if (end < 0) end = key.length;
      if (end > close + 2) {
        return [key.slice(0, close + 1) + key.slice(end), key.slice(close + 2, end)];
      }
    }
  }
  return [key, ""];
}
