// The entry of the development IdP's worker thread: TypeScript runs through tsx's loader here too (the main
// thread's loader does not reach workers), then the IdP's own code takes over.
import { register } from 'tsx/esm/api';

register();
await import('./dev-idp-worker-main.ts');
