import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import { SlotqError, toError, type ErrorCode } from '../shared/errors.js';
import { UnknownSessionError } from './sessions.js';
import type { ErrorBody } from './wire-schemas.js';

/** HTTP status of an error the gateway answers with (per-call problems are results, never these). */
function statusOf(code: ErrorCode, err: unknown): number {
  if (err instanceof UnknownSessionError) return 404;
  switch (code) {
    case 'INVALID_ARGS':
    case 'TOO_LARGE':
    case 'UNKNOWN_TOOL':
    case 'PATH_OUTSIDE_WORKSPACE':
      return 400;
    case 'NOT_FOUND':
      return 404;
    case 'PERMISSION_DENIED':
      return 403;
    case 'LEASE_LOST':
      return 409;
    case 'NO_SLOT':
    case 'BACKEND_STOPPED':
    case 'WORKER_LOST':
    case 'SLOT_BROKEN':
    case 'TIMEOUT':
      return 503;
    case 'TOOL_FAILED':
    case 'INTERNAL':
      return 500;
  }
}

export const errorBody = (code: string, message: string, retryable: boolean): ErrorBody => ({ error: { code, message, retryable } });

/** Fastify's own errors about the request (body parsing, size, validation) as contract codes. */
function requestError(err: FastifyError): [number, ErrorBody] | undefined {
  if (hasZodFastifySchemaValidationErrors(err)) {
    const detail = err.validation
      .slice(0, 3)
      .map((v) => {
        const path = v.instancePath.slice(1).replaceAll('/', '.');
        const where = `${err.validationContext ?? 'body'}${path ? `.${path}` : ''}`;
        return v.keyword === 'unrecognized_keys' ? `${where}: unknown field(s) ${JSON.stringify((v.params as { keys?: unknown }).keys ?? [])}` : `${where}: ${v.message}`;
      })
      .join('; ');
    return [400, errorBody('INVALID_ARGS', `Invalid request: ${detail}`, false)];
  }
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return [400, errorBody('TOO_LARGE', `Request body is larger than the gateway's limit (SLOTQ_GATEWAY_MAX_BODY_BYTES)`, false)];
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return [400, errorBody('INVALID_ARGS', `Malformed JSON body: ${err.message}`, false)];
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return [400, errorBody('INVALID_ARGS', `${err.message}: send a JSON body with Content-Type: application/json`, false)];
    default:
      break;
  }
  if (err instanceof SyntaxError || (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500)) {
    return [400, errorBody('INVALID_ARGS', `Malformed request: ${err.message}`, false)];
  }
  return undefined;
}

export function makeErrorHandler(log: Logger) {
  return (error: unknown, request: FastifyRequest, reply: FastifyReply): void => {
    if (error instanceof SlotqError) {
      void reply.code(statusOf(error.code, error)).send(errorBody(error.code, error.message, error.retryable));
      return;
    }
    const fe = error as FastifyError;
    const mapped = requestError(fe);
    if (mapped) {
      void reply.code(mapped[0]).send(mapped[1]);
      return;
    }
    const e = toError(error);
    log.error({ err: e.message, url: request.url }, 'gateway request failed');
    void reply.code(500).send(errorBody('INTERNAL', `Gateway error: ${e.message}`, true));
  };
}
