/** The platform's version, reported by /api/v1/meta and the CLI. */
export const version = '0.1.0';
