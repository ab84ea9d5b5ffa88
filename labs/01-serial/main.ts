// Command-line entry for lab 01: `make lab-01`, or `node dist/labs/01-serial/main.js --help`.
import { runLab } from '../../shared/cli.js';
import { copyFlags } from '../../shared/copy-flags.js';
import { lab } from './server.js';

runLab(lab, copyFlags);
