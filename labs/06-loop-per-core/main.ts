// Command-line entry for lab 06: `node dist/labs/06-loop-per-core/main.js --help`.
import { runLab } from '../../shared/cli.js';
import { lab, loopFlags } from './server.js';

runLab(lab, loopFlags);
