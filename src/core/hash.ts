/**
 * A short, stable hash of a string: 53 bits (two 32-bit multiply-xorshift lanes, folded), in
 * base 36, at most 11 characters. Not for security: the pool uses it to remember many request
 * ids in little space, where a collision among ten thousand ids has odds of about one in 10^12.
 */
export function hash53(text: string): string {
  let h1 = 0x9e3779b1 ^ text.length;
  let h2 = 0x85ebca77 ^ text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 15), 0x2c1b3c6d) ^ Math.imul(h2 ^ (h2 >>> 13), 0x297a2d39);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 0x85ebca6b) ^ Math.imul(h1 ^ (h1 >>> 13), 0xc2b2ae35);
  return (((h2 >>> 0) & 0x1fffff) * 0x100000000 + (h1 >>> 0)).toString(36);
}
