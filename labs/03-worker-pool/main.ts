// Command-line entry for lab 03: `make lab-03`, or `node dist/labs/03-worker-pool/main.js --help`.
import { runLab } from '../../shared/cli.js';
import { lab, poolFlags } from './server.js';

runLab(lab, poolFlags);
