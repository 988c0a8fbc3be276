import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, type ErrorDetail, toProblem } from '../errors.ts';

type AjvError = {
  instancePath?: string;
  message?: string;
  keyword?: string;
  params?: Record<string, unknown>;
};

function describe(e: AjvError, context: string): ErrorDetail {
  const path = `${context === 'body' ? '' : `${context}:`}${e.instancePath || '/'}`;
  const p = e.params ?? {};
  if (e.keyword === 'additionalProperties')
    return { path, message: `unknown field "${p.additionalProperty}"` };
  if (e.keyword === 'required') return { path, message: `missing required field "${p.missingProperty}"` };
  if (e.keyword === 'enum')
    return { path, message: `must be one of: ${(p.allowedValues as string[] | undefined)?.join(', ')}` };
  if (e.keyword === 'pattern' && /\/name$/.test(path))
    return {
      path,
      message:
        'must be a DNS label: lower-case letters, digits and hyphens, at most 63, not starting or ending with a hyphen',
    };
  return { path, message: e.message ?? 'is not valid' };
}

/** Maps every failure to RFC 9457 problem+json: known errors keep their code, the rest become a logged 500. */
export function toAppError(error: FastifyError | AppError | Error): AppError {
  if (error instanceof AppError) return error;
  const fe = error as FastifyError & { validation?: AjvError[]; validationContext?: string };
  if (fe.validation) {
    const details = fe.validation.slice(0, 20).map((e) => describe(e, fe.validationContext ?? 'body'));
    return new AppError(
      'validation_failed',
      `the ${fe.validationContext ?? 'request'} is not valid: ${details[0]?.path} ${details[0]?.message}`,
      details,
    );
  }
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError('payload_too_large', 'the request body is larger than 1 MiB');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AppError(
        'unsupported_media_type',
        'send application/json (or application/yaml for manifests)',
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new AppError('bad_request', 'the request body is empty; send a JSON object');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new AppError('bad_request', 'the Content-Length header does not match the body');
  }
  if (error instanceof SyntaxError || fe.statusCode === 400)
    return new AppError('bad_request', `the request body is not valid: ${error.message}`);
  if (fe.statusCode === 404) return new AppError('not_found', error.message);
  if (fe.statusCode === 405) return new AppError('method_not_allowed', error.message);
  if (fe.statusCode === 413)
    return new AppError('payload_too_large', 'the request body is larger than 1 MiB');
  if (fe.statusCode === 415) return new AppError('unsupported_media_type', error.message);
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500)
    return new AppError('bad_request', error.message);
  return new AppError(
    'internal',
    'something went wrong on the server; the request id identifies it in the logs',
  );
}

export function sendProblem(reply: FastifyReply, request: FastifyRequest, error: AppError) {
  const path = request.url.split('?')[0];
  return reply
    .status(error.status)
    .type('application/problem+json')
    .send(toProblem(error, request.id, path));
}

export function installErrorHandling(app: FastifyInstance) {
  app.setErrorHandler((error, request, reply) => {
    const appError = toAppError(error as FastifyError);
    if (appError.code === 'internal') request.log.error({ err: error }, 'unhandled error');
    else request.log.info({ code: appError.code }, appError.message);
    return sendProblem(reply, request, appError);
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(
      reply,
      request,
      new AppError('not_found', `no route ${request.method} ${request.url.split('?')[0]}`),
    ),
  );
}
