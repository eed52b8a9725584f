/**
 * File storage in an S3-compatible bucket: the SigV4 signer against AWS's published examples, the S3 flags, the
 * S3 blob store against s3rver (an S3-compatible server from npm, run in this process), and end to end: the real
 * server process with `--s3-endpoint/--s3-bucket`, an app deployed with the official CLI, uploads (a 21 MB one as a
 * multipart upload), metadata, downloads with ranges, and deletes.
 *
 * s3rver accepts any well-formed SigV4 signature without checking it, so the tests put a proxy in front of it that
 * recomputes every request's signature from what arrives on the wire (an implementation separate from
 * src/storage/sigv4.ts, on node:crypto) and refuses mismatches, as S3 would.
 */
import { createHash, createHmac } from "node:crypto";
import { join } from "node:path";
import { startLocalS3 } from "./helpers/s3rver.ts";
import { ConvexHttpClient } from "convex/browser";
import { anyApi } from "convex/server";
import { assert, assertEquals } from "./helpers/assert.ts";
import { createConvexApp, DEPLOY_ARGS, runConvexCli } from "./helpers/convex_app.ts";
import { serveCommandArgs, startTaskEnvList } from "./helpers/server_child.ts";
import {
  BlobTooLargeError,
  S3_PART_BYTES,
  S3BlobStore,
  type S3Options,
  signRequest,
  StorageService,
} from "../src/storage/mod.ts";
import { openStorage } from "../src/server/storage.ts";
import { parseCommandLine, type ServeConfig, UsageError } from "../src/server/config.ts";
import { STORAGE_FILES_BASE } from "./helpers/storage_app.ts";

const REPO = new URL("../", import.meta.url).pathname;
const BUCKET = "denvex-test";
/** s3rver's built-in account. */
const ACCESS_KEY_ID = "S3RVER";
const SECRET_ACCESS_KEY = "S3RVER";
const SERVER_START_TIMEOUT_MS = 30_000;
// deno-lint-ignore no-explicit-any
const api = anyApi as any;

const APP: Record<string, string> = {
  "files.ts": `${STORAGE_FILES_BASE}
export const storeInAction = action({
  args: { text: v.string() },
  handler: async (ctx, { text }) => await ctx.storage.store(new Blob([text], { type: "text/markdown" })),
});
export const deleteInAction = action({ args: { id: v.id("_storage") }, handler: async (ctx, { id }) => await ctx.storage.delete(id) });
export const getInAction = action({
  args: { id: v.id("_storage") },
  handler: async (ctx, { id }) => {
    const blob = await ctx.storage.get(id);
    return blob === null ? null : { text: await blob.text(), type: blob.type };
  },
});
`,
};

// ---------------------------------------------------------------------------------------------------------------
// SigV4: the examples of AWS's S3 documentation ("Signature Calculations for the Authorization Header: Transferring
// Payload in a Single Chunk"), access key AKIAIOSFODNN7EXAMPLE, 24 May 2013, region us-east-1, bucket examplebucket.

const AWS_EXAMPLE_CREDENTIALS = {
  accessKeyId: "AKIAIOSFODNN7EXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
};
const AWS_EXAMPLE_TIME = new Date(Date.UTC(2013, 4, 24, 0, 0, 0));
const AWS_EXAMPLE_HOST = "https://examplebucket.s3.amazonaws.com";
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

Deno.test("s3: SigV4 signatures match AWS's documented examples", async () => {
  const sign = (method: string, path: string, headers: Record<string, string>, payloadSha256Hex: string) =>
    signRequest({
      method,
      url: new URL(AWS_EXAMPLE_HOST + path),
      headers,
      payloadSha256Hex,
      region: "us-east-1",
      now: AWS_EXAMPLE_TIME,
    }, AWS_EXAMPLE_CREDENTIALS);

  // GET Object with a Range header.
  const get = await sign("GET", "/test.txt", { Range: "bytes=0-9" }, EMPTY_SHA256);
  assertEquals(
    get.authorization,
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request," +
      "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date," +
      "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
  );
  assertEquals(get["x-amz-date"], "20130524T000000Z");
  assertEquals(get["x-amz-content-sha256"], EMPTY_SHA256);
  assertEquals(get.range, "bytes=0-9");

  // PUT Object: a `$` in the key (URI-encoded in the canonical path), a Date header, a signed payload hash.
  const body = "Welcome to Amazon S3.";
  const bodySha256 = createHash("sha256").update(body).digest("hex");
  assertEquals(bodySha256, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  const put = await sign(
    "PUT",
    "/test$file.text",
    { Date: "Fri, 24 May 2013 00:00:00 GMT", "x-amz-storage-class": "REDUCED_REDUNDANCY" },
    bodySha256,
  );
  assert(put.authorization.includes("SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"));
  assert(put.authorization.endsWith("Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"));

  // GET Bucket Lifecycle: a subresource without a value.
  const lifecycle = await sign("GET", "/?lifecycle", {}, EMPTY_SHA256);
  assert(
    lifecycle.authorization.endsWith("Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
  );

  // GET Bucket (List Objects): query parameters sorted into canonical order.
  const list = await sign("GET", "/?prefix=J&max-keys=2", {}, EMPTY_SHA256);
  assert(list.authorization.endsWith("Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"));
});

// ---------------------------------------------------------------------------------------------------------------
// Flags

Deno.test("s3: flags and credentials are parsed and validated", () => {
  const creds: Record<string, string> = {
    DENVEX_S3_ACCESS_KEY_ID: "AKID",
    DENVEX_S3_SECRET_ACCESS_KEY: "secret",
  };
  const serve = (args: string[], env: Record<string, string> = creds): ServeConfig => {
    const command = parseCommandLine(["serve", ...args], (name) => env[name]);
    assert(command.kind === "serve");
    return command.config;
  };
  const usageError = (args: string[], mention: string, env: Record<string, string> = creds) => {
    try {
      serve(args, env);
    } catch (error) {
      assert(error instanceof UsageError, String(error));
      assert(error.message.includes(mention), error.message);
      assert(!error.message.includes("\n"), "one line");
      return;
    }
    throw new Error(`${args.join(" ")} was accepted`);
  };

  assertEquals(serve([]).s3, null);
  // Without S3 flags the credentials are not even read (no env grant needed for them).
  assertEquals(
    parseCommandLine(["serve"], (name) => {
      if (name.startsWith("DENVEX_S3_")) throw new Error(`read ${name}`);
      return undefined;
    }).kind,
    "serve",
  );
  assertEquals(serve(["--s3-endpoint", "http://127.0.0.1:9000/", "--s3-bucket", "files"]).s3, {
    endpoint: "http://127.0.0.1:9000",
    bucket: "files",
    region: "us-east-1",
    accessKeyId: "AKID",
    secretAccessKey: "secret",
  });
  assertEquals(
    serve(["--s3-endpoint=https://s3.eu-west-1.amazonaws.com", "--s3-bucket=b.example", "--s3-region=eu-west-1"]).s3
      ?.region,
    "eu-west-1",
  );
  usageError(["--s3-bucket", "files"], "--s3-bucket needs --s3-endpoint");
  usageError(["--s3-endpoint", "http://127.0.0.1:9000"], "--s3-endpoint needs --s3-bucket");
  usageError(["--s3-region", "us-east-1"], "--s3-region");
  usageError(["--s3-endpoint", "ftp://host", "--s3-bucket", "files"], "--s3-endpoint");
  usageError(["--s3-endpoint", "http://user:pw@host", "--s3-bucket", "files"], "--s3-endpoint");
  usageError(["--s3-endpoint", "not a url", "--s3-bucket", "files"], "--s3-endpoint");
  usageError(["--s3-endpoint", "http://host", "--s3-bucket", "Bad_Bucket"], "--s3-bucket");
  usageError(["--s3-endpoint", "http://host", "--s3-bucket", "files", "--s3-region", "EU WEST"], "--s3-region");
  usageError(["--s3-endpoint", "http://host", "--s3-bucket", "files"], "DENVEX_S3_ACCESS_KEY_ID", {});
  usageError(["--s3-endpoint", "http://host", "--s3-bucket", "files"], "DENVEX_S3_SECRET_ACCESS_KEY", {
    DENVEX_S3_ACCESS_KEY_ID: "AKID",
    DENVEX_S3_SECRET_ACCESS_KEY: "",
  });
});

/** The start task must let the server read the S3 credentials. */
async function assertStartTaskReadsS3Credentials(): Promise<void> {
  const list = await startTaskEnvList();
  for (const name of ["DENVEX_S3_ACCESS_KEY_ID", "DENVEX_S3_SECRET_ACCESS_KEY"]) {
    assert(list.split(",").includes(name), `the start task's --allow-env lacks ${name}`);
  }
}

/** `deno run <the server's permissions> main.ts serve ...` (data directory `dataDir`). */
async function serverCommand(dataDir: string, args: string[], env: Record<string, string>, piped: boolean) {
  await assertStartTaskReadsS3Credentials();
  return new Deno.Command(Deno.execPath(), {
    args: await serveCommandArgs(dataDir, [
      "--port=0",
      "--site-port=0",
      "--host=127.0.0.1",
      `--data=${dataDir}`,
      ...args,
    ]),
    cwd: REPO,
    env: { NO_COLOR: "1", DENVEX_ADMIN_KEY: "", DENVEX_S3_ACCESS_KEY_ID: "", DENVEX_S3_SECRET_ACCESS_KEY: "", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: piped ? "piped" : "inherit",
  });
}

Deno.test("s3: incomplete S3 configuration exits 2 with one line, before anything is created", async () => {
  const parent = await Deno.makeTempDir({ prefix: "denvex-s3-flags-" });
  const dataDir = join(parent, "data");
  try {
    const cases: [string[], Record<string, string>, string][] = [
      [["--s3-bucket", BUCKET], {}, "--s3-endpoint"],
      [["--s3-endpoint", "http://127.0.0.1:1"], {}, "--s3-bucket"],
      [["--s3-endpoint", "http://127.0.0.1:1", "--s3-bucket", BUCKET], {}, "DENVEX_S3_ACCESS_KEY_ID"],
      [["--s3-endpoint", "http://127.0.0.1:1", "--s3-bucket", BUCKET], { DENVEX_S3_ACCESS_KEY_ID: "a" }, "SECRET"],
    ];
    for (const [args, env, mention] of cases) {
      const output = await (await serverCommand(dataDir, args, env, true)).output();
      const stderr = new TextDecoder().decode(output.stderr);
      assertEquals(output.code, 2, `${args.join(" ")}: ${stderr}`);
      assertEquals(stderr.trimEnd().split("\n").length, 1, stderr);
      assert(stderr.includes(mention), stderr);
    }
    assert(!(await Deno.stat(dataDir).then(() => true, () => false)), "the data directory must not be created");
  } finally {
    await Deno.remove(parent, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------------------------
// An S3-compatible server: s3rver behind a signature-checking proxy

interface LoggedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
}

interface S3Fixture {
  endpoint: string;
  options: S3Options;
  /** Every request the proxy let through. */
  requests: LoggedRequest[];
  /** Requests refused for a bad signature or payload hash. */
  rejected: string[];
  close(): Promise<void>;
}

async function startS3(): Promise<S3Fixture> {
  const s3 = await startLocalS3(BUCKET);
  const upstream = s3.endpoint;
  const requests: LoggedRequest[] = [];
  const rejected: string[] = [];
  const proxy = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const url = new URL(request.url);
    const body = new Uint8Array(await request.arrayBuffer());
    const problem = verifySignature(request, url, body);
    if (problem !== null) {
      rejected.push(`${request.method} ${url.pathname}${url.search}: ${problem}`);
      const xml = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code>` +
        `<Message>${problem}</Message></Error>`;
      return new Response(xml, { status: 403, headers: { "content-type": "application/xml" } });
    }
    requests.push({ method: request.method, path: url.pathname, query: url.searchParams });
    const headers = new Headers(request.headers);
    for (const name of ["host", "content-length", "connection", "transfer-encoding"]) headers.delete(name);
    const response = await fetch(upstream + url.pathname + url.search, {
      method: request.method,
      headers,
      ...(body.length > 0 ? { body } : {}),
    });
    return new Response(request.method === "HEAD" ? null : response.body, {
      status: response.status,
      headers: response.headers,
    });
  });
  const endpoint = `http://127.0.0.1:${proxy.addr.port}`;
  return {
    endpoint,
    options: {
      endpoint,
      bucket: BUCKET,
      region: "us-east-1",
      accessKeyId: ACCESS_KEY_ID,
      secretAccessKey: SECRET_ACCESS_KEY,
    },
    requests,
    rejected,
    async close() {
      await proxy.shutdown();
      await s3.close();
    },
  };
}

/** Recomputes a SigV4 header signature from the request as received; null if it is right, else what is wrong. */
function verifySignature(request: Request, url: URL, body: Uint8Array): string | null {
  const auth =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/
      .exec(request.headers.get("authorization") ?? "");
  if (!auth) return "missing or malformed Authorization header";
  const [, accessKeyId, date, region, signedHeaders, signature] = auth;
  if (accessKeyId !== ACCESS_KEY_ID) return `unknown access key ${accessKeyId}`;
  const amzDate = request.headers.get("x-amz-date") ?? "";
  if (!amzDate.startsWith(date)) return "x-amz-date does not match the credential scope";
  const signedAt = Date.parse(amzDate.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, "$1-$2-$3T$4:$5:$6Z"));
  if (!(Math.abs(Date.now() - signedAt) < 15 * 60 * 1000)) return `x-amz-date ${amzDate} is off`;
  const names = signedHeaders.split(";");
  for (const required of ["host", "x-amz-content-sha256", "x-amz-date"]) {
    if (!names.includes(required)) return `${required} is not signed`;
  }
  const payloadHash = request.headers.get("x-amz-content-sha256") ?? "";
  if (payloadHash !== "UNSIGNED-PAYLOAD" && payloadHash !== createHash("sha256").update(body).digest("hex")) {
    return "the body does not match x-amz-content-sha256";
  }
  const encode = (text: string) =>
    encodeURIComponent(text).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
  const query = url.search.slice(1).split("&").filter(Boolean).map((pair) => {
    const [name, value = ""] = pair.split(/=(.*)/s);
    return `${encode(decodeURIComponent(name))}=${encode(decodeURIComponent(value))}`;
  }).sort();
  const canonical = [
    request.method,
    url.pathname.split("/").map((segment) => encode(decodeURIComponent(segment))).join("/"),
    query.join("&"),
    names.map((name) => `${name}:${(request.headers.get(name) ?? "").trim().replace(/\s+/g, " ")}\n`).join(""),
    signedHeaders,
    payloadHash,
  ].join("\n");
  const scope = `${date}/${region}/s3/aws4_request`;
  const stringToSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${
    createHash("sha256").update(canonical).digest("hex")
  }`;
  let key: Uint8Array = new TextEncoder().encode(`AWS4${SECRET_ACCESS_KEY}`);
  for (const part of [date, region, "s3", "aws4_request"]) key = createHmac("sha256", key).update(part).digest();
  const expected = createHmac("sha256", key).update(stringToSign).digest("hex");
  return expected === signature ? null : `signature mismatch; canonical request:\n${canonical}`;
}

/** A deterministic, non-repeating-looking body of `sizeBytes`. */
function testBytes(sizeBytes: number, seed: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(sizeBytes);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < sizeBytes; i += 4) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[i] = state;
    bytes[i + 1] = state >>> 8;
    bytes[i + 2] = state >>> 16;
    bytes[i + 3] = state >>> 24;
  }
  return bytes;
}

/** A stream of `bytes` in chunks of `chunkBytes`, then (optionally) an error instead of the end. */
function chunked(bytes: Uint8Array, chunkBytes: number, failAtEnd = false): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) {
        if (failAtEnd) controller.error(new Error("client went away"));
        else controller.close();
        return;
      }
      controller.enqueue(bytes.slice(offset, offset + chunkBytes));
      offset += chunkBytes;
    },
  });
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const sha256Hex = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const sha256Base64 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("base64");
/** A valid blob key (storage IDs are lowercase base32). */
const blobKey = () => `k${crypto.randomUUID().replaceAll("-", "")}`;

Deno.test({
  name: "s3: the blob store against s3rver: put, multipart, ranges, atomicity, limits, listing",
  async fn(t) {
    const s3 = await startS3();
    try {
      const store = await S3BlobStore.open(s3.options);
      await t.step("a missing bucket or wrong credentials fail at open", async () => {
        let message = "";
        await S3BlobStore.open({ ...s3.options, bucket: "no-such-bucket" }).catch((error) => message = error.message);
        assert(message.includes("NoSuchBucket"), message);
        message = "";
        await S3BlobStore.open({ ...s3.options, secretAccessKey: "wrong" }).catch((error) => message = error.message);
        assert(message.includes("SignatureDoesNotMatch"), message);
        s3.rejected.length = 0;
      });

      await t.step("small blob: one PUT, read, size, ranges, remove", async () => {
        const key = blobKey();
        const before = s3.requests.length;
        const written = await store.write(key, new TextEncoder().encode("hello, bucket"), 1024);
        assertEquals(written, { sizeBytes: 13, sha256Base64: sha256Base64(new TextEncoder().encode("hello, bucket")) });
        assertEquals(s3.requests.slice(before).map((r) => r.method), ["PUT"]);
        assertEquals(await store.size(key), 13);
        assertEquals(new TextDecoder().decode((await store.read(key))!), "hello, bucket");
        assertEquals(new TextDecoder().decode(await collect((await store.stream(key, 7, 6))!)), "bucket");
        assertEquals(s3.requests.at(-1)!.method, "GET");
        await store.remove(key);
        assertEquals(await store.size(key), null);
        assertEquals(await store.read(key), null);
        assertEquals(await store.stream(key, 0, 1), null);
        await store.remove(key); // already gone: no error
      });

      await t.step("large streamed blob: multipart upload, SHA-256 over the stream, ranged reads", async () => {
        const bytes = testBytes(2 * S3_PART_BYTES + 123_457, 7);
        const key = blobKey();
        const before = s3.requests.length;
        const written = await store.write(key, chunked(bytes, 64 * 1024 + 3), 1024 * 1024 * 1024);
        assertEquals(written, { sizeBytes: bytes.length, sha256Base64: sha256Base64(bytes) });
        const calls = s3.requests.slice(before);
        assertEquals(calls.map((r) => `${r.method} ${r.query.get("partNumber") ?? [...r.query.keys()].join(",")}`), [
          "POST uploads",
          "PUT 1",
          "PUT 2",
          "PUT 3",
          "POST uploadId",
        ]);
        assertEquals(await store.size(key), bytes.length);
        const start = S3_PART_BYTES - 10;
        const slice = await collect((await store.stream(key, start, 100))!);
        assertEquals(slice, bytes.subarray(start, start + 100));
        assertEquals(sha256Hex(await collect((await store.stream(key, 0, bytes.length))!)), sha256Hex(bytes));
        await store.remove(key);
      });

      await t.step("a failed or oversized upload leaves no object and aborts its multipart upload", async () => {
        const bytes = testBytes(S3_PART_BYTES + 1000, 9);
        const failing = blobKey();
        const before = s3.requests.length;
        let failure: unknown = null;
        await store.write(failing, chunked(bytes, 100_000, true), 1024 * 1024 * 1024).catch((error) => failure = error);
        assert(failure instanceof Error && failure.message === "client went away", String(failure));
        assertEquals(await store.size(failing), null);
        const aborted = s3.requests.slice(before).filter((r) => r.method === "DELETE" && r.query.has("uploadId"));
        assertEquals(aborted.length, 1);

        const tooLarge = blobKey();
        failure = null;
        await store.write(tooLarge, chunked(bytes, 100_000), S3_PART_BYTES + 999).catch((error) => failure = error);
        assert(failure instanceof BlobTooLargeError, String(failure));
        assertEquals(await store.size(tooLarge), null);
        failure = null;
        await store.write(tooLarge, bytes.subarray(0, 2000), 1999).catch((error) => failure = error);
        assert(failure instanceof BlobTooLargeError, String(failure));
        assertEquals(await store.size(tooLarge), null);
      });

      await t.step("listing for the orphan sweep: only blob keys older than the cutoff, bounded", async () => {
        const keys = [blobKey(), blobKey(), blobKey()];
        for (const key of keys) await store.write(key, new TextEncoder().encode(key), 1024);
        const future = Date.now() + 60_000;
        assertEquals((await store.listOlderThan(Date.now() - 60_000, 100)).length, 0);
        const listed = await store.listOlderThan(future, 100);
        assertEquals(new Set(listed), new Set(keys));
        assertEquals((await store.listOlderThan(future, 2)).length, 2);
        for (const key of keys) await store.remove(key);
        assertEquals(await store.listOlderThan(future, 100), []);
      });

      await t.step("the orphan sweep removes bucket objects without a document, and only those", async () => {
        const dataDir = await Deno.makeTempDir({ prefix: "denvex-s3-sweep-" });
        const database = await openStorage({ kind: "sqlite", path: join(dataDir, "denvex.sqlite3") });
        try {
          const storage = await StorageService.open({
            database,
            dataDir,
            s3: s3.options,
            adminKey: "denvex-test|x",
            cloudUrl: () => "http://127.0.0.1:1",
          });
          const kept = await storage.store(new TextEncoder().encode("kept"), "text/plain", 1024);
          const orphan = await storage.writeBlob(new TextEncoder().encode("orphan"), 1024);
          const foreign = blobKey(); // not a storage ID: someone else's object
          await store.write(foreign, new TextEncoder().encode("foreign"), 1024);
          assertEquals(await storage.sweepOrphans(), 0, "young blobs are never swept");
          assertEquals(await storage.sweepOrphans(Date.now() + 3 * 60 * 60 * 1000), 1);
          assertEquals(await store.size(orphan.storageId), null);
          assertEquals(await store.size(kept), 4);
          assertEquals(await store.size(foreign), 7);
          await storage.delete(kept);
          assertEquals(await store.size(kept), null);
          await store.remove(foreign);
          // Nothing was written to the data directory.
          assert(!(await Deno.stat(join(dataDir, "storage")).then(() => true, () => false)));
        } finally {
          await database.close();
          await Deno.remove(dataDir, { recursive: true });
        }
      });

      assertEquals(s3.rejected, []);
    } finally {
      await s3.close();
    }
  },
});

// ---------------------------------------------------------------------------------------------------------------
// End to end: the server process on an S3 bucket

Deno.test({
  name: "s3: the server with --s3-endpoint: upload, metadata, download, range, delete, 21 MB multipart upload",
  async fn(t) {
    const s3 = await startS3();
    const dataDir = await Deno.makeTempDir({ prefix: "denvex-s3-server-" });
    const adminKey = `denvex-test|${crypto.randomUUID().replaceAll("-", "")}`;
    const command = await serverCommand(
      dataDir,
      [`--s3-endpoint=${s3.endpoint}`, `--s3-bucket=${BUCKET}`],
      {
        DENVEX_ADMIN_KEY: adminKey,
        DENVEX_S3_ACCESS_KEY_ID: ACCESS_KEY_ID,
        DENVEX_S3_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
      },
      false,
    );
    const child = command.spawn();
    const app = await createConvexApp(APP);
    const bucketStore = await S3BlobStore.open(s3.options);
    try {
      const banner = await readBanner(child);
      assert(banner.includes(`files:        S3 bucket ${BUCKET} at ${s3.endpoint}`), banner);
      const url = /API: +(http:\/\/\S+)/.exec(banner)![1];
      const client = new ConvexHttpClient(url);
      const deployed = await runConvexCli(app, DEPLOY_ARGS, { url, adminKey });
      assertEquals(deployed.code, 0, deployed.stdout + deployed.stderr);
      const upload = async (body: Uint8Array<ArrayBuffer> | string, contentType: string) => {
        const uploadUrl: string = await client.mutation(api.files.uploadUrl, {});
        const response = await fetch(uploadUrl, { method: "POST", body, headers: { "Content-Type": contentType } });
        assertEquals(response.status, 200, await response.clone().text());
        return ((await response.json()) as { storageId: string }).storageId;
      };

      let storageId = "";
      await t.step("upload → object in the bucket, _storage metadata → download", async () => {
        storageId = await upload("hello, s3 storage", "text/plain");
        assertEquals(await bucketStore.size(storageId), 17);
        const doc = await client.query(api.files.doc, { id: storageId });
        assertEquals(doc.size, 17);
        assertEquals(doc.contentType, "text/plain");
        assertEquals(doc.sha256, createHash("sha256").update("hello, s3 storage").digest("base64"));
        const meta = await client.query(api.files.meta, { id: storageId });
        assertEquals(meta.sha256, createHash("sha256").update("hello, s3 storage").digest("hex"));
        const fileUrl: string = await client.query(api.files.url, { id: storageId });
        const response = await fetch(fileUrl);
        assertEquals(response.status, 200);
        assertEquals(response.headers.get("content-type"), "text/plain");
        assertEquals(await response.text(), "hello, s3 storage");
        // Nothing went to the data directory.
        const local = await Array.fromAsync(Deno.readDir(join(dataDir, "storage"))).catch(() => []);
        assertEquals(local.filter((entry) => entry.isFile), []);
      });

      await t.step("range requests pass through: 206, suffix range, 416, HEAD", async () => {
        const fileUrl = `${url}/api/storage/${storageId}`;
        let response = await fetch(fileUrl, { headers: { Range: "bytes=7-8" } });
        assertEquals(response.status, 206);
        assertEquals(response.headers.get("content-range"), "bytes 7-8/17");
        assertEquals(await response.text(), "s3");
        assertEquals(s3.requests.at(-1)!.method, "GET");
        response = await fetch(fileUrl, { headers: { Range: "bytes=-7" } });
        assertEquals(await response.text(), "storage");
        response = await fetch(fileUrl, { headers: { Range: "bytes=17-" } });
        assertEquals(response.status, 416);
        await response.body?.cancel();
        response = await fetch(fileUrl, { method: "HEAD" });
        assertEquals(response.status, 200);
        assertEquals(response.headers.get("content-length"), "17");
      });

      await t.step("ctx.storage.store/get in an action go through the bucket", async () => {
        const id: string = await client.action(api.files.storeInAction, { text: "# from an action" });
        assertEquals(await bucketStore.size(id), 16);
        assertEquals(await client.action(api.files.getInAction, { id }), {
          text: "# from an action",
          type: "text/markdown",
        });
      });

      await t.step("delete from an action: the document and the object are gone", async () => {
        await client.action(api.files.deleteInAction, { id: storageId });
        assertEquals(await client.query(api.files.doc, { id: storageId }), null);
        assertEquals(await bucketStore.size(storageId), null);
        const response = await fetch(`${url}/api/storage/${storageId}`);
        assertEquals(response.status, 404);
        await response.body?.cancel();
      });

      await t.step(
        "delete from a mutation: the document is gone at once, the object is left to the sweep",
        async () => {
          const id = await upload("deleted in a mutation", "text/plain");
          await client.mutation(api.files.remove, { id });
          assertEquals(await client.query(api.files.doc, { id }), null);
          const response = await fetch(`${url}/api/storage/${id}`);
          assertEquals(response.status, 404);
          await response.body?.cancel();
          // The mutation could have rolled back, so the blob outlives it; the sweep (tested below) removes it.
          assertEquals(await bucketStore.size(id), 21);
        },
      );

      await t.step("a 21 MB upload is streamed to the bucket as a multipart upload", async () => {
        const bytes = testBytes(21 * 1024 * 1024 + 777, 21);
        const before = s3.requests.length;
        const id = await upload(bytes, "application/octet-stream");
        const parts = s3.requests.slice(before).filter((r) => r.method === "PUT" && r.query.has("partNumber"));
        assertEquals(parts.length, 3);
        assert(s3.requests.slice(before).some((r) => r.method === "POST" && r.query.has("uploadId")), "completed");
        const doc = await client.query(api.files.doc, { id });
        assertEquals(doc.size, bytes.length);
        assertEquals(doc.sha256, sha256Base64(bytes));
        const response = await fetch(`${url}/api/storage/${id}`);
        assertEquals(response.status, 200);
        assertEquals(sha256Hex(new Uint8Array(await response.arrayBuffer())), sha256Hex(bytes));
        const ranged = await fetch(`${url}/api/storage/${id}`, { headers: { Range: "bytes=10000000-10000099" } });
        assertEquals(ranged.status, 206);
        assertEquals(new Uint8Array(await ranged.arrayBuffer()), bytes.subarray(10_000_000, 10_000_100));
        await client.action(api.files.deleteInAction, { id });
        assertEquals(await bucketStore.size(id), null);
      });

      assertEquals(s3.rejected, []);
    } finally {
      try {
        child.kill("SIGTERM");
      } catch { /* already exited */ }
      await child.status;
      await app.dispose();
      await s3.close();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "s3: a server whose bucket is unreachable or missing fails to start (exit 1) with one clear line",
  async fn() {
    const s3 = await startS3();
    const dataDir = await Deno.makeTempDir({ prefix: "denvex-s3-server-" });
    try {
      const output = await (await serverCommand(
        dataDir,
        [`--s3-endpoint=${s3.endpoint}`, "--s3-bucket=missing-bucket"],
        { DENVEX_S3_ACCESS_KEY_ID: ACCESS_KEY_ID, DENVEX_S3_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY },
        true,
      )).output();
      const stderr = new TextDecoder().decode(output.stderr);
      assertEquals(output.code, 1, stderr);
      assert(stderr.includes("missing-bucket") && stderr.includes("NoSuchBucket"), stderr);
      assert(!stderr.includes(SECRET_ACCESS_KEY), "no credentials in errors");
    } finally {
      await s3.close();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
});

/** Reads the server's stdout until its banner is complete. */
async function readBanner(child: Deno.ChildProcess): Promise<string> {
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let banner = "";
  const timer = setTimeout(() => reader.cancel().catch(() => {}), SERVER_START_TIMEOUT_MS);
  try {
    while (!/HTTP actions: +http:\/\/\S+/.test(banner)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the server did not start:\n${banner}`);
      banner += value;
    }
  } finally {
    clearTimeout(timer);
  }
  // Keep draining stdout so the server never blocks on a full pipe.
  (async () => {
    while (!(await reader.read()).done) { /* discard */ }
  })().catch(() => {});
  return banner;
}
