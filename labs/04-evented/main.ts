// Command-line entry for lab 04: `make lab-04`, or `node dist/labs/04-evented/main.js --help`.
import { runLab } from '../../shared/cli.js';
import { lab } from './server.js';

runLab(lab);
