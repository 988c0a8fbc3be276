import { parentPort, workerData } from 'node:worker_threads';
import { startDevIdp } from './dev-idp.ts';

// The development IdP in its thread: it starts, says where it listens, and stops when told.
const idp = await startDevIdp(workerData as Parameters<typeof startDevIdp>[0]);
parentPort!.postMessage({ issuer: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret });
parentPort!.once('message', async () => {
  await idp.close();
  parentPort!.close();
});
