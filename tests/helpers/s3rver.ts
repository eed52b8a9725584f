/**
 * A local S3 server (s3rver) on a free loopback port with one bucket, storing in a temporary folder, for the S3 file
 * storage and backup tests. Its credentials are s3rver's fixed ones.
 */
import S3rver from "s3rver";

/** A running s3rver; `close` stops it and removes its folder. */
export interface LocalS3 {
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  close(): Promise<void>;
}

/** Starts s3rver with `bucket` created. */
export async function startLocalS3(bucket: string): Promise<LocalS3> {
  const directory = await Deno.makeTempDir({ prefix: "denvex-s3rver-" });
  const s3rver = new S3rver({
    address: "127.0.0.1",
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket, configs: [] }],
  });
  const { port } = await s3rver.run() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    accessKeyId: "S3RVER",
    secretAccessKey: "S3RVER",
    async close() {
      await s3rver.close();
      await Deno.remove(directory, { recursive: true }).catch(() => {});
    },
  };
}
