// Command-line entry for lab 02: `make lab-02`, or `node dist/labs/02-process-per-connection/main.js --help`.
import { runLab } from '../../shared/cli.js';
import { lab } from './server.js';

runLab(lab);
