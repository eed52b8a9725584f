# denvex server image.
#   docker build -t denvex .
#   docker run -p 3210:3210 -p 3211:3211 -v denvex-data:/data denvex
# Flags after the image name reach the server, e.g. `docker run -e PGPASSWORD=... ... denvex --db postgres://user@db:5432/denvex`.
# Secrets go in the environment (DENVEX_ADMIN_KEY, PGPASSWORD or DENVEX_DB_URL, DENVEX_S3_*), never in flags: the server
# refuses --admin-key and a password inside --db.
# The container listens on every interface (--host 0.0.0.0). Choose the API port with `-e DENVEX_PORT=4000` (not
# `--port`), so the health check probes the same port.
# The first start generates an admin key and keeps it in the volume (never printed): `docker exec <container> cat /data/admin-key`.
FROM denoland/deno:debian-2.9.6

WORKDIR /app
# The cache lives with the app, so the image owns exactly what it built.
ENV DENO_DIR=/app/.deno-dir

COPY deno.json main.ts ./
COPY src/ ./src/
# Only the server's own packages (src/server/deno.lock, the module graph of main.ts), into DENO_DIR: no node_modules
# folder and none of the test tooling in deno.lock. At run time --cached-only keeps the server and its runner
# processes from fetching anything.
RUN deno install --lock=src/server/deno.lock --node-modules-dir=none --entrypoint main.ts

# Build as root, run as the image's unprivileged `deno` user: the code and the cache are read-only to the server,
# which may write its data directory only.
RUN mkdir -p /data && chown deno:deno /data
VOLUME /data
USER deno

# The API port; the entrypoint passes it as --port and the health check probes it.
ENV DENVEX_PORT=3210
EXPOSE 3210 3211

HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
  CMD ["deno", "eval", "--no-config", "const r = await fetch(`http://127.0.0.1:${Deno.env.get('DENVEX_PORT')}/version`); Deno.exit(r.ok ? 0 : 1)"]

# The launcher (main.ts start, the same as `deno task start`) parses the flags and starts the server with the grants
# they need: read/write on /data (or wherever --data, --backup-dir point), the network, the server's environment
# variables, the deno binary for runner processes and `taskset` to pin them to CPUs, plus the server's V8 flags
# (SERVER_V8_FLAGS in src/server/launcher.ts: a capped young generation, issue 14). `exec` makes the launcher the
# process that receives `docker stop`'s SIGTERM; it passes it on, so the server shuts down cleanly.
ENTRYPOINT ["/bin/sh", "-c", "exec deno run --lock=src/server/deno.lock --node-modules-dir=none --cached-only --no-prompt --allow-run main.ts start --data /data --host 0.0.0.0 --port \"$DENVEX_PORT\" \"$@\"", "denvex"]
CMD []
