/**
 * The default rate-limit key: the client's address. IPv6 clients are keyed by their /56 prefix,
 * the block a single subscriber commonly gets, so one customer cannot dodge the limit by rotating
 * addresses inside it. An IPv4-mapped IPv6 address (`::ffff:203.0.113.9`, what a dual-stack
 * socket reports for IPv4 clients) is its IPv4 address.
 */
export function clientKey(address: string): string {
  if (!address.includes(":")) return address;
  let text = address;
  const zone = text.indexOf("%");
  if (zone >= 0) text = text.slice(0, zone);
  const hextets = parseIpv6(text);
  if (hextets === undefined) return address;
  if (
    hextets[0] === 0 &&
    hextets[1] === 0 &&
    hextets[2] === 0 &&
    hextets[3] === 0 &&
    hextets[4] === 0 &&
    hextets[5] === 0xffff
  ) {
    const a = hextets[6]!;
    const b = hextets[7]!;
    return `${a >> 8}.${a & 0xff}.${b >> 8}.${b & 0xff}`;
  }
  const h = (n: number) => n.toString(16);
  return `${h(hextets[0]!)}:${h(hextets[1]!)}:${h(hextets[2]!)}:${h(hextets[3]! & 0xff00)}::/56`;
}

/** Eight 16-bit groups of an IPv6 address in text form (with `::` and a dotted tail), or undefined. */
function parseIpv6(text: string): number[] | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (part: string): number[] | undefined => {
    if (part === "") return [];
    const out: number[] = [];
    const pieces = part.split(":");
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i]!;
      if (i === pieces.length - 1 && p.includes(".")) {
        const v4 = p.split(".");
        if (v4.length !== 4) return undefined;
        const bytes = v4.map((x) => (/^\d{1,3}$/.test(x) ? Number(x) : 256));
        if (bytes.some((x) => x > 255)) return undefined;
        out.push((bytes[0]! << 8) | bytes[1]!, (bytes[2]! << 8) | bytes[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined;
        out.push(Number.parseInt(p, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (head === undefined || tail === undefined) return undefined;
  if (halves.length === 1) return head.length === 8 ? head : undefined;
  const fill = 8 - head.length - tail.length;
  if (fill < 1) return undefined;
  return [...head, ...new Array<number>(fill).fill(0), ...tail];
}
