/**
 * A child process for the crash test: opens the database at the location given as JSON in argv[0] and commits
 * single-document insert mutations from several concurrent writers until killed. Each acknowledged commit prints
 * one line `<id> <ts>` only after `commit()` resolved, i.e. once it is durable.
 */
import { openDatabase } from "../../src/database/mod.ts";
import { openPersistence } from "../../src/persistence/mod.ts";
import { mutate, sys } from "./engine.ts";

const location = JSON.parse(Deno.args[0]);
const db = await openDatabase(await openPersistence(location));
const encoder = new TextEncoder();
const WRITERS = 8;
let sequence = 0;

async function writer(): Promise<never> {
  for (;;) {
    const n = sequence++;
    const { result, ts } = await mutate(db, async (tx) => {
      const { _id } = await sys<{ _id: string }>(tx, "1.0/insert", { table: "load", value: { n } });
      return _id;
    });
    Deno.stdout.writeSync(encoder.encode(`${result} ${ts}\n`));
  }
}

Deno.stdout.writeSync(encoder.encode("ready\n"));
await Promise.all(Array.from({ length: WRITERS }, writer));
