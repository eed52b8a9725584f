/**
 * IP address arithmetic for the network policy of user code: parsing every spelling of an address the way the
 * operating system would read it, the non-public ranges, and IPv4 range subtraction (Deno's `--deny-net` takes IPv4
 * CIDRs, so "127.0.0.0/8 except 127.0.0.1" must become a list of CIDRs).
 */

/** An IP address: IPv4 as a 32-bit number, IPv6 as a 128-bit bigint. */
export type IpAddress = { family: 4; value: number } | { family: 6; value: bigint };

/** An inclusive range of IPv4 addresses, as 32-bit numbers. */
export interface Ipv4Range {
  first: number;
  last: number;
}

const IPV4_MAX = 0xffff_ffff;
const IPV6_BITS = 128n;
const IPV6_GROUPS = 8;

/**
 * IPv4 ranges no action may reach by default: "this network", private, shared (CGNAT), loopback, link-local, IETF
 * protocol assignments, documentation, benchmarking, multicast and reserved/broadcast.
 */
export const NON_PUBLIC_IPV4_CIDRS: readonly string[] = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.0.0.0/24",
  "192.0.2.0/24",
  "192.168.0.0/16",
  "198.18.0.0/15",
  "198.51.100.0/24",
  "203.0.113.0/24",
  "224.0.0.0/4",
  "240.0.0.0/4",
];

/**
 * IPv6 ranges no action may reach by default. `--deny-net` cannot express IPv6 ranges, so the worker's guard checks
 * these (net_guard.ts); the flags deny `[::]`, `[::1]` and the machine's own addresses exactly. Ranges that embed an
 * IPv4 address (mapped, NAT64, 6to4) are judged by that address instead (see {@link isNonPublicAddress}).
 */
export const NON_PUBLIC_IPV6_CIDRS: readonly string[] = [
  "::/96", // unspecified, loopback, IPv4-compatible
  "100::/64", // discard
  "2001:db8::/32", // documentation
  "fc00::/7", // unique local
  "fe80::/10", // link-local
  "fec0::/10", // site-local (deprecated, still routed by some stacks)
  "ff00::/8", // multicast
];

/** IPv6 prefixes whose low or middle bits carry an IPv4 address: [cidr, bit offset of the IPv4 address from the right]. */
const IPV4_EMBEDDING_IPV6_CIDRS: readonly [string, bigint][] = [
  ["::ffff:0:0/96", 0n], // IPv4-mapped
  ["64:ff9b::/96", 0n], // NAT64
  ["64:ff9b:1::/48", 0n], // local-use NAT64: treated as embedding its low 32 bits
  ["2002::/16", 80n], // 6to4
];

/**
 * Parses an IP literal, as a URL host or a socket address may spell it: dotted IPv4 including the legacy forms the
 * OS and WHATWG URL parser accept (`127.1`, `0x7f.1`, `2130706433`, octal `0177.0.0.1`), and IPv6 with or without
 * brackets, with an optional zone (`fe80::1%eth0`) and an optional trailing IPv4 part. Returns null for a name.
 */
export function parseIp(text: string): IpAddress | null {
  let host = text.trim();
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  if (host.includes(":")) return parseIpv6(host);
  const value = parseIpv4(host);
  return value === null ? null : { family: 4, value };
}

/** Parses IPv4 in the forms `inet_aton` accepts (1 to 4 parts, decimal, octal or hex). */
export function parseIpv4(text: string): number | null {
  const host = text.endsWith(".") ? text.slice(0, -1) : text;
  const parts = host.split(".");
  if (parts.length < 1 || parts.length > 4) return null;
  const numbers: number[] = [];
  for (const part of parts) {
    const value = parseIpv4Part(part);
    if (value === null) return null;
    numbers.push(value);
  }
  const last = numbers.pop()!;
  // The last part fills the bytes the earlier parts did not name.
  if (last >= 2 ** (8 * (4 - numbers.length))) return null;
  if (numbers.some((part) => part > 0xff)) return null;
  let value = 0;
  numbers.forEach((part, index) => value += part * 2 ** (8 * (3 - index)));
  return value + last;
}

function parseIpv4Part(part: string): number | null {
  let digits = part.toLowerCase();
  let radix = 10;
  if (/^0x[0-9a-f]*$/.test(digits)) {
    radix = 16;
    digits = digits.slice(2) || "0";
  } else if (/^0[0-7]+$/.test(digits)) {
    radix = 8;
  } else if (!/^[0-9]+$/.test(digits)) {
    return null;
  }
  const value = parseInt(digits, radix);
  return Number.isSafeInteger(value) && value <= IPV4_MAX ? value : null;
}

/** Parses IPv6 (no brackets); a zone (`%eth0`) is ignored; a trailing dotted IPv4 part is allowed. */
export function parseIpv6(text: string): IpAddress | null {
  let host = text;
  const zone = host.indexOf("%");
  if (zone !== -1) host = host.slice(0, zone);
  if (!/^[0-9A-Fa-f:.]+$/.test(host)) return null;
  const groups: number[] = [];
  const halves = host.split("::");
  if (halves.length > 2) return null;
  const parsed = halves.map((half) => parseGroups(half));
  if (parsed.some((half) => half === null)) return null;
  const [head, tail] = [parsed[0]!, parsed[1] ?? null];
  if (tail === null) {
    if (head.length !== IPV6_GROUPS) return null;
    groups.push(...head);
  } else {
    const missing = IPV6_GROUPS - head.length - tail.length;
    if (missing < 1) return null;
    groups.push(...head, ...new Array<number>(missing).fill(0), ...tail);
  }
  let value = 0n;
  for (const group of groups) value = (value << 16n) | BigInt(group);
  return { family: 6, value };
}

/** The 16-bit groups of one side of `::`; a final dotted IPv4 part counts as two groups. */
function parseGroups(half: string): number[] | null {
  if (half === "") return [];
  const parts = half.split(":");
  const groups: number[] = [];
  for (const [index, part] of parts.entries()) {
    if (part.includes(".")) {
      if (index !== parts.length - 1 || !/^\d{1,3}(\.\d{1,3}){3}$/.test(part)) return null;
      const v4 = parseIpv4(part);
      if (v4 === null) return null;
      groups.push(v4 >>> 16, v4 & 0xffff);
    } else {
      if (!/^[0-9A-Fa-f]{1,4}$/.test(part)) return null;
      groups.push(parseInt(part, 16));
    }
  }
  return groups;
}

/** Formats an address canonically: dotted IPv4, or compressed lowercase IPv6 without brackets. */
export function formatIp(address: IpAddress): string {
  if (address.family === 4) return formatIpv4(address.value);
  const groups: number[] = [];
  for (let shift = IPV6_BITS - 16n; shift >= 0n; shift -= 16n) groups.push(Number((address.value >> shift) & 0xffffn));
  // Compress the longest run (of at least two) of zero groups.
  let bestStart = -1;
  let bestLength = 1;
  for (let start = 0; start < groups.length;) {
    let end = start;
    while (end < groups.length && groups[end] === 0) end++;
    if (end - start > bestLength) [bestStart, bestLength] = [start, end - start];
    start = end === start ? start + 1 : end;
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart === -1) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

/** Dotted-quad text of a 32-bit IPv4 number. */
export function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join(".");
}

/** The host text `--allow-net`/`--deny-net` expect: IPv6 in brackets. */
export function permissionHost(address: IpAddress): string {
  return address.family === 4 ? formatIp(address) : `[${formatIp(address)}]`;
}

/** Parses `a.b.c.d/n` into a range. Throws on malformed input (the CIDR lists are constants). */
export function parseIpv4Cidr(cidr: string): Ipv4Range {
  const [base, bitsText] = cidr.split("/");
  const value = parseIpv4(base);
  const bits = Number(bitsText);
  if (value === null || !Number.isInteger(bits) || bits < 0 || bits > 32) throw new Error(`Bad IPv4 CIDR ${cidr}`);
  const size = 2 ** (32 - bits);
  const first = value - (value % size);
  return { first, last: first + size - 1 };
}

/** True if `address` lies in the IPv6 CIDR `cidr`. */
function inIpv6Cidr(address: bigint, cidr: string): boolean {
  const [base, bitsText] = cidr.split("/");
  const parsed = parseIpv6(base);
  if (parsed === null || parsed.family !== 6) throw new Error(`Bad IPv6 CIDR ${cidr}`);
  const hostBits = IPV6_BITS - BigInt(bitsText);
  return (address >> hostBits) === (parsed.value >> hostBits);
}

const NON_PUBLIC_IPV4_RANGES = NON_PUBLIC_IPV4_CIDRS.map(parseIpv4Cidr);

/**
 * True if `address` is loopback, private, link-local, unspecified, multicast, reserved or documentation space, in
 * either family, including IPv6 forms that carry such an IPv4 address (mapped, NAT64, 6to4).
 */
export function isNonPublicAddress(address: IpAddress): boolean {
  if (address.family === 4) return NON_PUBLIC_IPV4_RANGES.some((range) => inRange(address.value, range));
  for (const [cidr, offset] of IPV4_EMBEDDING_IPV6_CIDRS) {
    if (inIpv6Cidr(address.value, cidr)) {
      const v4 = Number((address.value >> offset) & 0xffff_ffffn);
      return isNonPublicAddress({ family: 4, value: v4 });
    }
  }
  return NON_PUBLIC_IPV6_CIDRS.some((cidr) => inIpv6Cidr(address.value, cidr));
}

/** The IPv4 address an IPv6 address carries when it is IPv4-mapped (`::ffff:a.b.c.d`), else null. */
export function unmapIpv4(address: IpAddress): IpAddress | null {
  if (address.family !== 6 || !inIpv6Cidr(address.value, "::ffff:0:0/96")) return null;
  return { family: 4, value: Number(address.value & 0xffff_ffffn) };
}

function inRange(value: number, range: Ipv4Range): boolean {
  return value >= range.first && value <= range.last;
}

/** Sorts and merges overlapping or adjacent ranges. */
export function mergeRanges(ranges: readonly Ipv4Range[]): Ipv4Range[] {
  const sorted = [...ranges].sort((a, b) => a.first - b.first);
  const merged: Ipv4Range[] = [];
  for (const range of sorted) {
    const last = merged.at(-1);
    if (last !== undefined && range.first <= last.last + 1) last.last = Math.max(last.last, range.last);
    else merged.push({ ...range });
  }
  return merged;
}

/** `ranges` without the addresses of `holes` (both may overlap in any way). */
export function subtractRanges(ranges: readonly Ipv4Range[], holes: readonly Ipv4Range[]): Ipv4Range[] {
  let remaining = mergeRanges(ranges);
  for (const hole of mergeRanges(holes)) {
    const next: Ipv4Range[] = [];
    for (const range of remaining) {
      if (hole.last < range.first || hole.first > range.last) {
        next.push(range);
        continue;
      }
      if (range.first < hole.first) next.push({ first: range.first, last: hole.first - 1 });
      if (range.last > hole.last) next.push({ first: hole.last + 1, last: range.last });
    }
    remaining = next;
  }
  return remaining;
}

/** The fewest CIDR blocks covering exactly `range` (a single address is written without `/32`). */
export function rangeToCidrs(range: Ipv4Range): string[] {
  const cidrs: string[] = [];
  let first = range.first;
  while (first <= range.last) {
    // The largest aligned block starting at `first` that stays inside the range.
    let size = first === 0 ? 2 ** 32 : 2 ** countTrailingZeros(first);
    while (first + size - 1 > range.last) size /= 2;
    const bits = 32 - Math.log2(size);
    cidrs.push(bits === 32 ? formatIpv4(first) : `${formatIpv4(first)}/${bits}`);
    first += size;
  }
  return cidrs;
}

function countTrailingZeros(value: number): number {
  let zeros = 0;
  while (zeros < 32 && Math.floor(value / 2 ** zeros) % 2 === 0) zeros++;
  return zeros;
}
