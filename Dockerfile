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

# Dependencies first, so this layer is reused while only the source changes.
COPY deno.json deno.lock ./
RUN deno install --frozen

COPY main.ts ./
COPY src/ ./src/
# Resolves and caches the module graph (the server's and, through `main.ts runner`, the runner's); at run time
# --cached-only keeps the server from fetching anything.
RUN deno cache --frozen main.ts

# Build as root, run as the image's unprivileged `deno` user: the code and the cache are read-only to the server,
# which may write its data directory only.
RUN mkdir -p /data && chown deno:deno /data
VOLUME /data
USER deno

# The API port; the entrypoint passes it as --port and the health check probes it.
ENV DENVEX_PORT=3210
EXPOSE 3210 3211

HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
  CMD ["deno", "eval", "const r = await fetch(`http://127.0.0.1:${Deno.env.get('DENVEX_PORT')}/version`); Deno.exit(r.ok ? 0 : 1)"]

# The permissions of `deno task start`, with the data directory at /data. `--allow-run` names the deno binary by
# its real path, Deno.execPath(), which is what runner processes are spawned with. `exec` makes deno the process
# that receives `docker stop`'s SIGTERM, so it shuts down cleanly.
ENTRYPOINT ["/bin/sh", "-c", "exec deno run --frozen --cached-only --unstable-worker-options --no-prompt --allow-net --allow-sys=networkInterfaces --allow-read=/data --allow-write=/data --allow-env=DENVEX_ADMIN_KEY,DENVEX_DB_URL,DENVEX_S3_ACCESS_KEY_ID,DENVEX_S3_SECRET_ACCESS_KEY,PGHOST,PGPORT,PGUSER,PGUSERNAME,PGPASSWORD,PGDATABASE,PGSSL,PGSSLNEGOTIATION,PGIDLE_TIMEOUT,PGCONNECT_TIMEOUT,PGMAX_LIFETIME,PGMAX_PIPELINE,PGBACKOFF,PGKEEP_ALIVE,PGPREPARE,PGDEBUG,PGFETCH_TYPES,PGPUBLICATIONS,PGTARGET_SESSION_ATTRS,PGAPPNAME,PGTARGETSESSIONATTRS --allow-run=\"$(deno eval -p 'Deno.execPath()')\" main.ts serve --data /data --host 0.0.0.0 --port \"$DENVEX_PORT\" \"$@\"", "denvex"]
CMD []
