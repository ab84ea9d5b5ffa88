// Starts a worker thread written in TypeScript when the experiment runs from source (tsx, vitest):
// Node 20 does not pass the parent's loader to worker threads, so this registers tsx in the new
// thread and then loads the worker's own .ts file. Compiled runs (dist/) start the .js directly.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.tsEntry);
