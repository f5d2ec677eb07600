/** Structured logs with pino. API keys are redacted wherever they might appear. */
import { pino, type Logger } from 'pino';

export function createLogger(level = process.env.SWITCHYARD_LOG_LEVEL ?? 'info', destination: NodeJS.WritableStream = process.stderr): Logger {
  return pino(
    {
      level,
      base: { svc: 'switchyard' },
      redact: { paths: ['apiKey', '*.apiKey', 'headers.authorization', 'headers["x-api-key"]', 'providers.*.apiKey'], censor: '[redacted]' },
    },
    destination,
  );
}
