# The Switchyard worker (and CLI). Build: docker build -t switchyard .
FROM node:20.19-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY test ./test
COPY bin ./bin
RUN npm run build && npm prune --omit=dev

FROM node:20.19-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
# The gateway's files (a named volume in docker-compose.yml takes this directory's owner when first mounted).
RUN mkdir -p /var/lib/switchyard/files && chown -R node:node /var/lib/switchyard
USER node
EXPOSE 9464
ENTRYPOINT ["node", "bin/switchyard.js"]
CMD ["worker"]
