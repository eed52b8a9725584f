/**
 * The request observer reads a request's path without parsing the whole URL when the URL is plain; whatever the URL,
 * the path must be the one `new URL(url).pathname` gives (the `/metrics` check and the endpoint labels rely on it).
 */
import { assertEquals } from "./helpers/assert.ts";
import { pathnameOf } from "../src/http/mod.ts";

Deno.test("observe: a request's path is the URL parser's, for plain and odd URLs alike", () => {
  const urls = [
    "http://127.0.0.1:3210/api/query",
    "http://h/api/query?x=1#y",
    "https://h:1/x#a?b",
    "http://h/x?y#z",
    "http://h/",
    "http://h",
    "http://h/a/./b",
    "http://h/a/../metrics",
    "http://h/%2e%2e/metrics",
    "http://h/a%2Fb",
    "http://h/a b",
    "http://h/é",
    "http://h/a\\b",
    "http://u@h/x",
    "http://[::1]:80/x/y",
    "http://h/.hidden",
    "http://h/a/..",
    "http://h//x",
    "http://h/{x}",
    "HTTP://H/X",
    "http://h/a;b=c",
  ];
  // Random paths over the characters the parser treats specially.
  const characters = "/a.%?#\\ :@b;=~é{}\t2E";
  let seed = 7;
  const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  for (let i = 0; i < 20_000; i++) {
    let path = "";
    for (let n = Math.floor(random() * 8); n > 0; n--) path += characters[Math.floor(random() * characters.length)];
    urls.push(`http://127.0.0.1:3210/${path}`);
  }
  for (const url of urls) assertEquals(pathnameOf(url), new URL(url).pathname, url);
});
