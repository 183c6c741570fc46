# syntax=docker/dockerfile:1
# genesys-event-bridge: `docker build -t genesys-event-bridge .`
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY schemas ./schemas
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json LICENSE ./
COPY schemas ./schemas
# The embedded delivery ledger; mount a volume here to keep it across container restarts (or use PostgreSQL).
RUN mkdir -p /var/lib/geb && chown node:node /var/lib/geb
ENV LEDGER_URL=/var/lib/geb/deliveries.jsonl
VOLUME /var/lib/geb
USER node
EXPOSE 8080
# The admin server's liveness endpoint (ADMIN_PORT, 8080 by default); Node's fetch avoids installing curl.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.ADMIN_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["run"]
