/**
 * The one error type of the platform. Each code maps once to an HTTP status and is rendered as
 * RFC 9457 problem+json; the set is closed so clients can branch on it.
 */
export const errorCatalog = {
  bad_request: { status: 400, title: 'The request is malformed' },
  validation_failed: { status: 400, title: 'The request does not match its schema' },
  unauthenticated: { status: 401, title: 'Authentication is required' },
  forbidden: { status: 403, title: 'You are not allowed to do this' },
  csrf_failed: { status: 403, title: 'The CSRF token is missing or wrong' },
  not_found: { status: 404, title: 'Not found' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  conflict: { status: 409, title: 'The request conflicts with the current state' },
  gone: { status: 410, title: 'No longer available' },
  policy_denied: { status: 403, title: 'A policy denied the request' },
  policy_invalid: { status: 422, title: 'The policy does not compile or its tests fail' },
  policy_budget_exceeded: { status: 422, title: 'A policy decision exceeded its evaluation budget' },
  payload_too_large: { status: 413, title: 'The request body is too large' },
  unsupported_media_type: { status: 415, title: 'Unsupported content type' },
  rate_limited: { status: 429, title: 'Too many requests' },
  internal: { status: 500, title: 'Internal error' },
  unavailable: { status: 503, title: 'Service unavailable' },
} as const;

export type ErrorCode = keyof typeof errorCatalog;

/** Where in the input a problem was found, and what is wrong there. */
export type ErrorDetail = { path: string; message: string };

/** A failure with a stable code, a human message that says what to do next, and optional details. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetail[];
  constructor(code: ErrorCode, message: string, details: ErrorDetail[] = []) {
    super(message);
    this.name = 'AppError';
    this.code = code;
    this.details = details;
  }
  get status(): number {
    return errorCatalog[this.code].status;
  }
}

/** The RFC 9457 body for an error. */
export type Problem = {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  instance?: string;
  errors?: ErrorDetail[];
  requestId?: string;
};

export function toProblem(error: AppError, requestId?: string, instance?: string): Problem {
  const problem: Problem = {
    type: `urn:microapp:problem:${error.code}`,
    title: errorCatalog[error.code].title,
    status: error.status,
    detail: error.message,
    code: error.code,
  };
  if (instance) problem.instance = instance;
  if (error.details.length > 0) problem.errors = error.details;
  if (requestId) problem.requestId = requestId;
  return problem;
}

export const notFound = (what: string) => new AppError('not_found', `${what} was not found`);
export const forbidden = (why: string) => new AppError('forbidden', why);
export const conflict = (why: string) => new AppError('conflict', why);
