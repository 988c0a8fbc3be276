export { type VerifyReport, verifyArtifact } from './verify.ts';
