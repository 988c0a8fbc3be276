/** Data classes an app may handle, from least to most sensitive. Shared by the API's schema and the console. */
export const dataClasses = [
  'public',
  'internal',
  'confidential',
  'pii',
  'financial',
  'health',
  'regulated',
] as const;
export type DataClass = (typeof dataClasses)[number];
