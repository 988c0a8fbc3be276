// The entry of a policy worker thread: TypeScript runs through tsx's loader here too (the main thread's
// loader does not reach workers), then the worker's own code takes over.
import { register } from 'tsx/esm/api';

register();
await import('./policy-worker-main.ts');
