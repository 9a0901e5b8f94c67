// Removes what a Redis bench wrote under its prefix: sluice's state would expire on its own, raw
// INCR counters would not. Keys carry the prefix first, or inside a hash tag.

/** Unlinks every key matching `<prefix>*` or `*<prefix>*`. */
export async function removeKeys(client, prefix) {
  for (const pattern of [`${prefix}*`, `*${prefix}*`]) {
    let cursor = "0";
    do {
      const [next, keys] = await client.scan(cursor, "MATCH", pattern, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await client.unlink(...keys);
    } while (cursor !== "0");
  }
}
